"""GET /api/threads: order, keyset pagination, status, `q` and `metadata.<key>` filters, isolation."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.conftest import Api, Factory
from tests.threads.helpers import (
    append,
    assert_problem,
    assert_thread_response,
    assert_validation_error,
    list_page,
    listed_ids,
    set_updated_at,
)

pytestmark = pytest.mark.through_pgbouncer

URL = "/api/threads"


async def make_threads(create_thread: Factory, count: int, **body: Any) -> list[str]:
    """Creates `count` threads; returns their ids newest first (the order the list must give)."""
    ids = [(await create_thread(title=f"thread {i}", **body))["id"] for i in range(count)]
    return ids[::-1]


async def walk(api: Api, user: str, **params: Any) -> list[list[str]]:
    """Every page of the list, following next_cursor until has_more is false."""
    pages: list[list[str]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = await list_page(api, user, **query)
        pages.append([t["id"] for t in page["data"]])
        if not page["has_more"]:
            assert page["next_cursor"] is None
            return pages
        assert isinstance(page["next_cursor"], str) and page["next_cursor"]
        cursor = page["next_cursor"]
        assert len(pages) < 100, "pagination does not end"


# --- shape and order ----------------------------------------------------------------------------------------


async def test_empty_list(api: Api, user: str) -> None:
    page = await list_page(api, user)
    assert page == {"object": "list", "data": [], "next_cursor": None, "has_more": False}


async def test_listed_threads_are_full_thread_objects(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(title="Trip", metadata={"topic": "travel"}, messages=[{"content": "hi"}])

    page = await list_page(api, user)

    assert page["data"] == [created]


async def test_newest_updated_at_first(api: Api, user: str, create_thread: Factory) -> None:
    newest_first = await make_threads(create_thread, 5)
    assert await listed_ids(api, user) == newest_first


async def test_appending_a_message_moves_the_thread_to_the_front(api: Api, user: str, create_thread: Factory) -> None:
    newest_first = await make_threads(create_thread, 3)
    oldest = newest_first[-1]

    assert (await append(api, user, oldest)).status_code == 201

    assert await listed_ids(api, user) == [oldest, *newest_first[:-1]]


async def test_patching_a_thread_moves_it_to_the_front(api: Api, user: str, create_thread: Factory) -> None:
    newest_first = await make_threads(create_thread, 3)
    oldest = newest_first[-1]

    response = await api.request("PATCH", f"{URL}/{oldest}", user=user, json={"metadata": {"seen": "yes"}})
    assert response.status_code == 200

    assert await listed_ids(api, user) == [oldest, *newest_first[:-1]]


async def test_ties_on_updated_at_put_the_larger_id_first(api: Api, user: str, create_thread: Factory) -> None:
    ids = await make_threads(create_thread, 6)
    await set_updated_at(api, ids, datetime(2030, 1, 1, 12, 0, 0, 123000, tzinfo=UTC))

    assert await listed_ids(api, user) == sorted(ids, reverse=True)


async def test_pagination_across_ties_has_no_repeats_or_gaps(api: Api, user: str, create_thread: Factory) -> None:
    ids = await make_threads(create_thread, 9)
    await set_updated_at(api, ids, datetime(2030, 1, 1, tzinfo=UTC))

    pages = await walk(api, user, limit=2)

    assert [i for page in pages for i in page] == sorted(ids, reverse=True)


# --- limit and cursor --------------------------------------------------------------------------------------------


async def test_default_limit_is_20(api: Api, user: str, create_thread: Factory) -> None:
    newest_first = await make_threads(create_thread, 21)

    page = await list_page(api, user)

    assert [t["id"] for t in page["data"]] == newest_first[:20]
    assert page["has_more"] is True
    assert page["next_cursor"]


@pytest.mark.parametrize("limit", [1, 100])
async def test_limit_bounds_are_accepted(api: Api, user: str, create_thread: Factory, limit: int) -> None:
    newest_first = await make_threads(create_thread, 2)

    page = await list_page(api, user, limit=limit)

    assert [t["id"] for t in page["data"]] == newest_first[:limit]
    assert page["has_more"] is (limit < 2)


async def test_limit_outside_1_to_100_is_422(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for limit in ["0", "101", "-1", "abc", "1.5", ""]:
        with subtests.test(repr(limit)[:60]):
            response = await api.request("GET", URL, user=user, params={"limit": limit})
            assert_validation_error(response, "limit")


async def test_pages_walk_every_thread_once_in_order(api: Api, user: str, create_thread: Factory) -> None:
    newest_first = await make_threads(create_thread, 25)

    pages = await walk(api, user, limit=7)

    assert [len(page) for page in pages] == [7, 7, 7, 4]
    assert [i for page in pages for i in page] == newest_first


async def test_last_full_page_reports_no_more(api: Api, user: str, create_thread: Factory) -> None:
    newest_first = await make_threads(create_thread, 6)

    pages = await walk(api, user, limit=3)

    assert pages == [newest_first[:3], newest_first[3:]]


async def test_writes_during_a_walk_cause_no_repeats_or_gaps(api: Api, user: str, create_thread: Factory) -> None:
    newest_first = await make_threads(create_thread, 10)
    first = await list_page(api, user, limit=4)
    assert [t["id"] for t in first["data"]] == newest_first[:4]

    # New activity goes to the front, which the walk has already passed.
    await create_thread(title="created mid-walk")
    assert (await append(api, user, newest_first[0])).status_code == 201

    rest = await walk(api, user, limit=4, cursor=first["next_cursor"])
    assert [i for page in rest for i in page] == newest_first[4:]


async def test_garbage_cursor_is_422(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for cursor in [
        "garbage",
        "!!!",
        "e30",  # base64 of {}
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(b'["not a time", "thr_x"]').decode(),
        base64.urlsafe_b64encode(b'["2026-01-01T00:00:00+00:00"]').decode(),
        "ünïcode",
    ]:
        with subtests.test(repr(cursor)[:60]):
            response = await api.request("GET", URL, user=user, params={"cursor": cursor})
            assert_validation_error(response, "cursor")


async def test_cursor_works_with_filters(api: Api, user: str, create_thread: Factory) -> None:
    tagged = await make_threads(create_thread, 5, metadata={"team": "red"})
    await make_threads(create_thread, 3, metadata={"team": "blue"})

    pages = await walk(api, user, limit=2, **{"metadata.team": "red"})

    assert [i for page in pages for i in page] == tagged


# --- status -----------------------------------------------------------------------------------------------------


async def archived_and_active(api: Api, user: str, create_thread: Factory) -> tuple[str, str]:
    archived = (await create_thread(title="old"))["id"]
    active = (await create_thread(title="new"))["id"]
    assert_thread_response(await api.request("DELETE", f"{URL}/{archived}", user=user))
    return archived, active


async def test_status_defaults_to_active(api: Api, user: str, create_thread: Factory) -> None:
    _, active = await archived_and_active(api, user, create_thread)
    assert await listed_ids(api, user) == [active]
    assert await listed_ids(api, user, status="active") == [active]


async def test_status_archived_lists_only_archived(api: Api, user: str, create_thread: Factory) -> None:
    archived, _ = await archived_and_active(api, user, create_thread)
    assert await listed_ids(api, user, status="archived") == [archived]


async def test_status_all_lists_both(api: Api, user: str, create_thread: Factory) -> None:
    archived, active = await archived_and_active(api, user, create_thread)
    # Archiving is a change: the archived thread was updated last.
    assert await listed_ids(api, user, status="all") == [archived, active]


async def test_archiving_and_unarchiving_move_threads_between_the_lists_that_all_merges(
    api: Api, user: str, create_thread: Factory
) -> None:
    newest_first = await make_threads(create_thread, 8)
    moved = newest_first[1::2]
    for thread_id in moved:  # each archive is a change: the thread goes to the front of the archived list
        assert assert_thread_response(await api.request("DELETE", f"{URL}/{thread_id}", user=user))["archived_at"]
    back = moved[0]
    response = await api.request("PATCH", f"{URL}/{back}", user=user, json={"status": "active"})
    assert assert_thread_response(response)["status"] == "active"
    archived = moved[:0:-1]  # the last archived first
    untouched = [i for i in newest_first if i not in moved]

    for status, expected in [
        ("active", [back, *untouched]),
        ("archived", archived),
        ("all", [back, *archived, *untouched]),
    ]:
        assert [i for page in await walk(api, user, status=status, limit=2) for i in page] == expected, status

    # Two instants shared by both lists: status=all interleaves them by updated_at, ties to the larger id.
    first, second = datetime(2030, 1, 1, 12, tzinfo=UTC), datetime(2030, 1, 1, 11, tzinfo=UTC)
    at = {i: first if n % 3 else second for n, i in enumerate(newest_first)}
    await set_updated_at(api, [i for i in newest_first if at[i] == first], first)
    await set_updated_at(api, [i for i in newest_first if at[i] == second], second)
    merged = sorted(newest_first, key=lambda i: (at[i], i), reverse=True)
    assert {at[i] for i in archived} == {first, second} and {at[i] for i in untouched} == {first, second}
    for limit in (1, 2, 3, 100):
        pages = await walk(api, user, status="all", limit=limit)
        assert [i for page in pages for i in page] == merged, limit
        assert [i for page in await walk(api, user, limit=limit) for i in page] == [
            i for i in merged if i not in archived
        ]
        assert [i for page in await walk(api, user, status="archived", limit=limit) for i in page] == [
            i for i in merged if i in archived
        ]


async def test_a_thread_unarchived_during_a_walk_leaves_it_for_the_front_of_the_active_list(
    api: Api, user: str, create_thread: Factory
) -> None:
    newest_first = await make_threads(create_thread, 4)
    for thread_id in newest_first[::-1]:  # archived oldest first: the archived list keeps the same order
        assert_thread_response(await api.request("DELETE", f"{URL}/{thread_id}", user=user))
    first = {status: await list_page(api, user, status=status, limit=1) for status in ("archived", "all")}
    assert all([t["id"] for t in page["data"]] == newest_first[:1] for page in first.values())

    # Unarchiving is a change: the thread leaves the archived list for the front of the active one, which
    # both walks have passed already.
    response = await api.request("PATCH", f"{URL}/{newest_first[2]}", user=user, json={"status": "active"})
    assert assert_thread_response(response)["status"] == "active"

    for status, page in first.items():
        rest = await walk(api, user, status=status, limit=1, cursor=page["next_cursor"])
        assert [i for each in rest for i in each] == [newest_first[1], newest_first[3]], status
    assert await listed_ids(api, user) == [newest_first[2]]
    assert await listed_ids(api, user, status="archived") == [newest_first[0], newest_first[1], newest_first[3]]
    assert await listed_ids(api, user, status="all") == [newest_first[2], *newest_first[:2], newest_first[3]]


async def test_unknown_status_is_422(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for status in ["deleted", "ALL", "", "Active"]:
        with subtests.test(repr(status)[:60]):
            assert_validation_error(await api.request("GET", URL, user=user, params={"status": status}), "status")


# --- q ----------------------------------------------------------------------------------------------------------


async def titled(create_thread: Factory, *titles: str | None) -> dict[str | None, str]:
    return {title: (await create_thread(title=title))["id"] for title in titles}


async def test_q_is_a_case_insensitive_substring_of_the_title(api: Api, user: str, create_thread: Factory) -> None:
    ids = await titled(create_thread, "Trip to LISBON", "lisbon food", "Porto", None)

    found = await listed_ids(api, user, q="Lisbon")

    assert set(found) == {ids["Trip to LISBON"], ids["lisbon food"]}
    assert await listed_ids(api, user, q="rip to l") == [ids["Trip to LISBON"]]


async def test_q_folds_non_ascii_case(api: Api, user: str, create_thread: Factory) -> None:
    ids = await titled(create_thread, "ÄRGER im Büro", "Ärger", "Arger")

    assert set(await listed_ids(api, user, q="ärger")) == {ids["ÄRGER im Büro"], ids["Ärger"]}


async def test_q_percent_is_literal(api: Api, user: str, create_thread: Factory) -> None:
    ids = await titled(create_thread, "100% sure", "plain")

    assert await listed_ids(api, user, q="%") == [ids["100% sure"]]
    assert await listed_ids(api, user, q="0%") == [ids["100% sure"]]


async def test_q_underscore_is_literal(api: Api, user: str, create_thread: Factory) -> None:
    ids = await titled(create_thread, "a_b", "axb")

    assert await listed_ids(api, user, q="_") == [ids["a_b"]]
    assert await listed_ids(api, user, q="a_b") == [ids["a_b"]]


async def test_q_special_characters_are_literal(
    api: Api, user: str, create_thread: Factory, subtests: pytest.Subtests
) -> None:
    for needle in ["\\", "[a]", "'", "*", "^x$"]:
        with subtests.test(repr(needle)[:60]):
            ids = await titled(create_thread, f"has {needle} inside", "nothing special")

            assert await listed_ids(api, user, q=needle) == [ids[f"has {needle} inside"]]


async def test_q_never_matches_untitled_threads(api: Api, user: str, create_thread: Factory) -> None:
    await titled(create_thread, None)
    assert await listed_ids(api, user, q="null") == []
    assert await listed_ids(api, user, q="None") == []


async def test_q_combines_with_status(api: Api, user: str, create_thread: Factory) -> None:
    ids = await titled(create_thread, "Lisbon one", "Lisbon two")
    await api.request("DELETE", f"{URL}/{ids['Lisbon one']}", user=user)

    assert await listed_ids(api, user, q="lisbon") == [ids["Lisbon two"]]
    assert await listed_ids(api, user, q="lisbon", status="archived") == [ids["Lisbon one"]]


# --- metadata filters -------------------------------------------------------------------------------------------


async def test_metadata_filter_is_an_exact_string_match(api: Api, user: str, create_thread: Factory) -> None:
    travel = (await create_thread(metadata={"topic": "travel"}))["id"]
    await create_thread(metadata={"topic": "Travel"})
    await create_thread(metadata={"topic": "travel plans"})
    await create_thread(metadata={"other": "travel"})
    await create_thread()

    assert await listed_ids(api, user, **{"metadata.topic": "travel"}) == [travel]


async def test_several_metadata_filters_combine_with_and(api: Api, user: str, create_thread: Factory) -> None:
    both = (await create_thread(metadata={"topic": "travel", "lang": "pt"}))["id"]
    await create_thread(metadata={"topic": "travel", "lang": "en"})
    await create_thread(metadata={"topic": "food", "lang": "pt"})

    found = await listed_ids(api, user, **{"metadata.topic": "travel", "metadata.lang": "pt"})

    assert found == [both]


async def test_metadata_filter_matches_only_string_values(
    api: Api, user: str, create_thread: Factory, subtests: pytest.Subtests
) -> None:
    for stored, query in [(5, "5"), (True, "true"), (None, "null"), (["x"], "x"), ({"x": "y"}, "y"), (1.5, "1.5")]:
        with subtests.test(repr(stored)[:60]):
            await create_thread(metadata={"k": stored})

            assert await listed_ids(api, user, **{"metadata.k": query}) == []


async def test_metadata_filter_on_a_string_that_looks_like_a_number(
    api: Api, user: str, create_thread: Factory
) -> None:
    string_five = (await create_thread(metadata={"k": "5"}))["id"]
    await create_thread(metadata={"k": 5})

    assert await listed_ids(api, user, **{"metadata.k": "5"}) == [string_five]


async def test_metadata_filter_key_may_contain_dots(api: Api, user: str, create_thread: Factory) -> None:
    dotted = (await create_thread(metadata={"a.b": "x"}))["id"]
    await create_thread(metadata={"a": {"b": "x"}})

    assert await listed_ids(api, user, **{"metadata.a.b": "x"}) == [dotted]


async def test_metadata_filter_matches_an_empty_string(api: Api, user: str, create_thread: Factory) -> None:
    empty = (await create_thread(metadata={"k": ""}))["id"]
    await create_thread(metadata={"k": "x"})
    await create_thread()

    assert await listed_ids(api, user, **{"metadata.k": ""}) == [empty]


async def test_metadata_filter_combines_with_q(api: Api, user: str, create_thread: Factory) -> None:
    match = (await create_thread(title="Lisbon", metadata={"topic": "travel"}))["id"]
    await create_thread(title="Porto", metadata={"topic": "travel"})
    await create_thread(title="Lisbon", metadata={"topic": "food"})

    assert await listed_ids(api, user, q="lis", **{"metadata.topic": "travel"}) == [match]


async def test_metadata_filter_without_a_key_is_422(api: Api, user: str) -> None:
    response = await api.request("GET", URL, user=user, params={"metadata.": "x"})
    assert_problem(response, 422)


# --- isolation --------------------------------------------------------------------------------------------------


async def test_another_users_threads_never_appear(api: Api, user: str, other_user: str, create_thread: Factory) -> None:
    mine = (await create_thread(title="Lisbon mine", metadata={"topic": "travel"}))["id"]
    for status in ("active", "archived"):
        theirs = await create_thread(_user=other_user, title="Lisbon theirs", metadata={"topic": "travel"})
        if status == "archived":
            await api.request("DELETE", f"{URL}/{theirs['id']}", user=other_user)

    assert await listed_ids(api, user, status="all") == [mine]
    assert await listed_ids(api, user, q="lisbon", status="all") == [mine]
    assert await listed_ids(api, user, status="all", **{"metadata.topic": "travel"}) == [mine]
    assert len(await listed_ids(api, other_user, status="all")) == 2


async def test_a_cursor_does_not_leak_another_users_threads(
    api: Api, user: str, other_user: str, create_thread: Factory
) -> None:
    await make_threads(create_thread, 3, _user=other_user)
    await make_threads(create_thread, 3)
    first = await list_page(api, other_user, limit=1)

    # The other user's cursor, replayed by this user, pages through this user's threads only.
    page = await list_page(api, user, limit=100, cursor=first["next_cursor"])
    assert all(t["title"].startswith("thread") for t in page["data"])
    mine = set(await listed_ids(api, user))
    assert {t["id"] for t in page["data"]} <= mine


async def test_list_requires_authentication(api: Api) -> None:
    response = await api.client.get(URL)
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].lower().startswith("bearer")
