"""Isolation (issue 18, "Isolation"): one user's search never returns, counts or ranks with another user's text.

Two users hold the same words. Each user's answers — which threads, in which order, with which scores, matches
and snippets, and where the pages break — are the same with and without the other user's data, on SQLite,
PostgreSQL and PostgreSQL through PgBouncer; another user's thread never appears, not through a cursor either.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, new_user
from tests.search.helpers import found, make_thread, search, walk

pytestmark = pytest.mark.through_pgbouncer

# (title, messages): shared words (zeppelin, harbour, lisbon) at different frequencies and lengths.
CORPUS: list[tuple[str | None, list[str]]] = [
    ("Zeppelin over Lisbon", ["the zeppelin flew over the harbour", "how long was the flight?"]),
    ("Harbour notes", ["harbour harbour harbour", "a zeppelin was seen"]),
    (None, ["Lisbon trip: the harbour, the castle and a zeppelin museum"]),
    ("Long text", ["lorem ipsum " * 60 + "zeppelin " + "dolor sit " * 40]),
    ("Short", ["zeppelin"]),
    ("Mixed", ["zeppelin", "harbour", "lisbon zeppelin harbour"]),
    ("东京 notes", ["我想去东京都旅游", "zeppelin 东京"]),
]

# The other user's extra text: many more of the same words, so any table-wide statistic would move.
FLOOD: list[tuple[str | None, list[str]]] = [
    ("zeppelin " * 5, ["zeppelin " * 50, "harbour lisbon " * 30]),
    *[(f"Zeppelin {i}", [f"zeppelin harbour {i}", "lisbon"]) for i in range(15)],
    (None, ["东京 " * 40]),
]

QUERIES = [
    "zeppelin",
    "harbour",
    "lisbon",
    "zeppelin harbour",
    '"the zeppelin"',
    "zep",
    "zeppelin -harbour",
    "东京",
    "lorem zeppelin",
]


async def seed(api: Api, user: str, corpus: list[tuple[str | None, list[str]]]) -> list[str]:
    return [(await make_thread(api, user, *texts, title=title))["id"] for title, texts in corpus]


def comparable(results: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            r["thread"]["id"],
            r["thread"]["updated_at"],
            r["score"],
            tuple((m["message_id"], m["snippet"]) for m in r["matches"]),
        )
        for r in results
    ]


async def answers(api: Api, user: str) -> dict[tuple[str, str, int], list[list[tuple[Any, ...]]]]:
    """Every query, both sorts, as one page of 50 and in pages of 2: what must not move."""
    seen = {}
    for q in QUERIES:
        for sort in ("relevance", "recent"):
            for limit in (50, 2):
                pages = await walk(api, user, q, sort=sort, limit=limit)
                seen[(q, sort, limit)] = [comparable(page) for page in pages]
    return seen


async def test_answers_are_the_same_with_and_without_another_users_data(api: Api) -> None:
    alice, bob = new_user(), new_user()
    alices = await seed(api, alice, CORPUS)
    alone = await answers(api, alice)
    assert any(pages[0] for pages in alone.values()), "the corpus matches nothing: the test proves nothing"

    bobs = await seed(api, bob, CORPUS) + await seed(api, bob, FLOOD)
    assert await answers(api, alice) == alone

    with_alice = await answers(api, bob)
    for thread_id in alices:
        response = await api.request("DELETE", f"/api/threads/{thread_id}", user=alice, params={"permanent": "true"})
        assert response.status_code == 204, response.text
    assert await answers(api, bob) == with_alice
    assert {tid for pages in with_alice.values() for page in pages for tid, *_ in page} <= set(bobs)


async def test_another_users_thread_never_appears(api: Api) -> None:
    alice, bob = new_user(), new_user()
    mine = set(await seed(api, alice, CORPUS))
    theirs = await seed(api, bob, CORPUS)
    archived = theirs[0]
    assert (await api.request("DELETE", f"/api/threads/{archived}", user=bob)).status_code == 200
    for q in QUERIES:
        for status in ("active", "archived", "all"):
            assert set(await found(api, alice, q, status=status)) <= mine, (q, status)


async def test_a_word_only_another_user_has_finds_nothing(api: Api) -> None:
    alice, bob = new_user(), new_user()
    await seed(api, alice, CORPUS)
    await make_thread(api, bob, "a quokka in the harbour", title="quokka")
    assert await found(api, alice, "quokka", status="all") == []
    assert await found(api, alice, "harbour -quokka") != []  # bob's quokka excludes nothing of alice's


async def test_another_users_cursor_pages_through_ones_own_threads_only(api: Api) -> None:
    alice, bob = new_user(), new_user()
    mine = set(await seed(api, alice, CORPUS))
    await seed(api, bob, CORPUS)
    for sort in ("relevance", "recent"):
        bobs_page = await search(api, bob, "zeppelin", limit=1, sort=sort)
        response = await api.request(
            "GET",
            "/api/search",
            user=alice,
            params={"q": "zeppelin", "limit": 50, "sort": sort, "cursor": bobs_page["next_cursor"]},
        )
        assert response.status_code in (200, 422), response.text
        if response.status_code == 200:
            assert {r["thread"]["id"] for r in response.json()["data"]} <= mine


async def test_an_index_owner_token_is_no_word_of_anyones_text(api: Api) -> None:
    """The index tags each text with its owner; that tag is not a word a query can find."""
    alice, bob = new_user(), new_user()
    await seed(api, alice, CORPUS)
    await seed(api, bob, CORPUS)
    for user in (alice, bob):
        hex_id = user.encode().hex()
        for q in (f"u{hex_id}", hex_id, f"u{hex_id[:8]}", user, f'"{user}"'):
            assert await found(api, alice, q) == [], q
