"""GET /api/search (API.md, version 2, "Search"), line by line, on SQLite, PostgreSQL and PostgreSQL through
PgBouncer: the answer's shape; what matches (every word in one text — the title or one message of any
branch —, phrases in order, exclusions over the whole thread, the last word as a prefix, case and accents,
pairs of characters for scripts without spaces); snippets (at most 200 characters, `<mark>`, escaping); at most
3 matches per thread and each thread once; `limit`, `cursor`, `sort`, `status` and `metadata.<key>` filters;
and the index kept in step with every write that changes searchable text (append, a streamed reply's end by
PATCH or by the stale sweep, a title change, a branch delete, a permanent delete, a fork), with failed writes
and text that is not searchable (reasoning, tool calls, metadata) leaving no trace in the results.

`search` (tests/search/helpers.py) checks the shape of every answer, so each test checks it too.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.conftest import Api
from tests.messages.test_replies import delta, patch, start_reply
from tests.search.helpers import (
    append,
    assert_snippet_of,
    found,
    found_set,
    get_thread,
    make_thread,
    marked,
    messages_of,
    plain,
    search,
    text_characters,
    thread_ids,
    walk,
)

pytestmark = pytest.mark.through_pgbouncer


# --- the answer -------------------------------------------------------------------------------------------------


async def test_no_match_is_an_empty_list(api: Api, user: str) -> None:
    await make_thread(api, user, "nothing to see here", title="Empty handed")
    assert await search(api, user, "zeppelin") == {"object": "list", "data": [], "next_cursor": None, "has_more": False}


async def test_a_result_holds_the_thread_as_get_returns_it(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "pastel de nata near the river", title="Trip", metadata={"topic": "food"})
    page = await search(api, user, "pastel")
    (result,) = page["data"]
    assert result["object"] == "search_result"
    assert result["thread"] == await get_thread(api, user, thread["id"])
    assert isinstance(result["score"], int | float)
    (match,) = result["matches"]
    (message,) = await messages_of(api, user, thread["id"])
    assert match == {"message_id": message["id"], "snippet": "<mark>pastel</mark> de nata near the river"}
    assert (page["next_cursor"], page["has_more"]) == (None, False)


async def test_a_title_match_has_a_null_message_id(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "nothing about it here", title="Quarterly zeppelin report")
    (result,) = (await search(api, user, "zeppelin"))["data"]
    assert result["thread"]["id"] == thread["id"]
    assert result["matches"] == [{"message_id": None, "snippet": "Quarterly <mark>zeppelin</mark> report"}]


async def test_a_thread_found_by_title_and_messages_gives_both(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "the zeppelin landed", "no match", title="Zeppelin notes")
    (result,) = (await search(api, user, "zeppelin"))["data"]
    first = (await messages_of(api, user, thread["id"]))[0]
    assert {m["message_id"] for m in result["matches"]} == {None, first["id"]}


async def test_the_thread_object_is_current(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "zeppelin one")
    await append(api, user, thread["id"], "zeppelin two")
    response = await api.request("PATCH", f"/api/threads/{thread['id']}", user=user, json={"metadata": {"k": "v"}})
    assert response.status_code == 200, response.text
    (result,) = (await search(api, user, "zeppelin"))["data"]
    assert result["thread"] == await get_thread(api, user, thread["id"])
    assert (result["thread"]["message_count"], result["thread"]["metadata"]) == (2, {"k": "v"})


# --- matching ---------------------------------------------------------------------------------------------------


async def test_every_word_in_one_message_in_any_order(api: Api, user: str) -> None:
    match = await make_thread(api, user, "We fly to Lisbon for the trip")
    await make_thread(api, user, "A trip to Porto")
    assert await found(api, user, "lisbon trip") == [match["id"]]
    assert await found(api, user, "trip lisbon") == [match["id"]]


async def test_words_split_across_two_messages_do_not_match(api: Api, user: str) -> None:
    await make_thread(api, user, "walrus here", "and a narwhal there")
    assert await found(api, user, "walrus narwhal") == []
    assert await found(api, user, "narwhal walrus") == []


async def test_words_split_between_the_title_and_a_message_do_not_match(api: Api, user: str) -> None:
    await make_thread(api, user, "a narwhal swims", title="Walrus facts")
    assert await found(api, user, "walrus narwhal") == []
    assert await found(api, user, "walrus facts")  # the title alone still matches


async def test_every_word_in_the_title_matches(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "unrelated", title="Walrus and narwhal")
    assert await found(api, user, "narwhal walrus") == [thread["id"]]


async def test_a_message_on_a_branch_that_is_not_shown_is_found(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "first question")
    tid = thread["id"]
    root = (await messages_of(api, user, tid))[0]
    hidden = await append(api, user, tid, "an answer about the okapi", role="assistant", parent_id=root["id"])
    shown = await append(api, user, tid, "an answer about the giraffe", role="assistant", parent_id=root["id"])
    assert (await get_thread(api, user, tid))["current_message_id"] == shown["id"]
    (result,) = (await search(api, user, "okapi"))["data"]
    assert [m["message_id"] for m in result["matches"]] == [hidden["id"]]


async def test_a_phrase_matches_its_words_together_in_order(api: Api, user: str) -> None:
    together = await make_thread(api, user, "a Red, apple on the table")
    await make_thread(api, user, "the apple is red")
    await make_thread(api, user, "red big apple")
    assert await found(api, user, '"red apple"') == [together["id"]]
    assert set(await found(api, user, "red apple")) >= {together["id"]}
    assert len(await found(api, user, "red apple")) == 3


async def test_a_phrase_and_a_word(api: Api, user: str) -> None:
    match = await make_thread(api, user, "table: a red apple")
    await make_thread(api, user, "chair: a red apple")
    assert await found(api, user, '"red apple" table') == [match["id"]]
    assert await found(api, user, 'table "red apple"') == [match["id"]]


async def test_an_exclusion_excludes_the_whole_thread(api: Api, user: str) -> None:
    kept = await make_thread(api, user, "alpha only here")
    await make_thread(api, user, "alpha in one message", "beta in another")
    await make_thread(api, user, "alpha in the message", title="beta in the title")
    branched = await make_thread(api, user, "alpha again")
    root = (await messages_of(api, user, branched["id"]))[0]
    await append(api, user, branched["id"], "beta on a branch", parent_id=root["id"])
    await append(api, user, branched["id"], "shown branch", parent_id=root["id"])
    assert await found(api, user, "alpha -beta") == [kept["id"]]
    assert await found(api, user, "-beta alpha") == [kept["id"]]


async def test_an_excluded_phrase(api: Api, user: str) -> None:
    kept = await make_thread(api, user, "alpha and beta gamma")
    await make_thread(api, user, "alpha and gamma beta")
    assert await found(api, user, 'alpha -"gamma beta"') == [kept["id"]]


async def test_an_exclusion_is_a_whole_word(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "alpha zebra")
    assert await found(api, user, "alpha -zebr") == [thread["id"]]  # the negated last word is no prefix
    assert await found(api, user, "alpha -zebra") == []


async def test_the_last_word_matches_as_a_prefix(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "zebra crossing research")
    assert await found(api, user, "zeb") == [thread["id"]]
    assert await found(api, user, "crossing resea") == [thread["id"]]
    assert await found(api, user, "ZEBRA CROSS") == [thread["id"]]


async def test_only_the_last_word_is_a_prefix(api: Api, user: str) -> None:
    await make_thread(api, user, "research zebra")
    assert await found(api, user, "resea zebra") == []
    assert await found(api, user, "zebra resea") != []


async def test_a_quoted_last_word_is_no_prefix(api: Api, user: str) -> None:
    await make_thread(api, user, "zebra crossing")
    assert await found(api, user, '"zeb"') == []
    assert await found(api, user, 'crossing "zeb"') == []
    assert await found(api, user, '"zebra cross"') == []


async def test_a_last_word_of_one_character_is_no_prefix(api: Api, user: str) -> None:
    await make_thread(api, user, "zebra crossing")
    assert await found(api, user, "zebra c") == []
    single = await make_thread(api, user, "zebra c")
    assert await found(api, user, "zebra c") == [single["id"]]


async def test_whole_words_without_stemming(api: Api, user: str) -> None:
    await make_thread(api, user, "apples and running")
    assert await found(api, user, "apple running") == []
    assert await found(api, user, '"run"') == []
    assert await found(api, user, "apples run") != []  # the last word is a prefix


async def test_no_stop_words(api: Api, user: str) -> None:
    the = await make_thread(api, user, "the zebra")
    await make_thread(api, user, "a zebra")
    assert await found(api, user, '"the zebra"') == [the["id"]]
    assert await found(api, user, "the zebra") == [the["id"]]
    assert await found(api, user, "zebra the") == [the["id"]]  # `the` as a prefix: only `the…` words


@pytest.mark.parametrize(
    "q",
    ["only -exclusions", "-zebra", '-"zebra crossing"', "-zebra -crossing", "-", '""', "!!!", "  ", "东"],
)
async def test_a_query_without_a_required_word_answers_no_results(api: Api, user: str, q: str) -> None:
    await make_thread(api, user, "zebra crossing", title="zebra")
    await make_thread(api, user, "nothing else", title="东")
    page = await search(api, user, q if q != "only -exclusions" else "-nothing")
    assert page == {"object": "list", "data": [], "next_cursor": None, "has_more": False}


@pytest.mark.parametrize(
    ("q", "text"),
    [
        ("cafe", "Un Café noir"),
        ("CAFÉ", "un cafe noir"),
        ("café", "UN CAFE NOIR"),
        ("STRASSE", "die Straße"),
        ("straße", "DIE STRASSE"),
        ("strasse", "die STRAẞE"),
        ("naive", "a naïve idea"),
        ("ÉLÈVE", "un élève"),
        ("ﬁle", "a file"),
        ("file", "a ﬁle"),
        ("\uff21\uff22\uff23", "abc"),  # full-width
        ("istanbul", "İstanbul"),
    ],
)
async def test_case_and_accents_do_not_matter(api: Api, user: str, q: str, text: str) -> None:
    thread = await make_thread(api, user, text)
    assert await found(api, user, f'"{q}"') == [thread["id"]]


async def test_an_accent_does_not_change_a_whole_word_into_another(api: Api, user: str) -> None:
    await make_thread(api, user, "résumé")
    assert await found(api, user, '"resum"') == []


async def test_foo_bar_and_c_plus_plus_are_phrases_of_their_parts(api: Api, user: str) -> None:
    snake = await make_thread(api, user, "call foo_bar() now")
    await make_thread(api, user, "foo and bar")
    assert await found(api, user, '"foo_bar"') == [snake["id"]]
    assert await found(api, user, '"foo bar"') == [snake["id"]]
    assert await found(api, user, "foo.bar") == [snake["id"]]
    cpp = await make_thread(api, user, "I write C++ daily")
    assert cpp["id"] in await found(api, user, "C++ daily")
    assert cpp["id"] in await found(api, user, "c daily")


@pytest.mark.parametrize(
    ("q", "hit"),
    [
        ("东京", True),
        ("京都", True),
        ("东京都", True),
        ("去东京都旅游", True),
        ("我想去东京都旅游", True),
        ("东都", False),
        ("京东", False),
        ("东京 旅游", True),  # two runs, both in the text
        ('"东京 旅游"', False),  # not together
        ("旅游 -京都", False),
    ],
)
async def test_chinese_matches_any_run_of_two_characters_or_more(api: Api, user: str, q: str, hit: bool) -> None:
    thread = await make_thread(api, user, "我想去东京都旅游")
    assert await found(api, user, q) == ([thread["id"]] if hit else [])


@pytest.mark.parametrize(("q", "hit"), [("京都に", True), ("行きたい", True), ("カフェ", True), ("都行", False)])
async def test_japanese_matches_any_run_of_two_characters_or_more(api: Api, user: str, q: str, hit: bool) -> None:
    thread = await make_thread(api, user, "東京都に行きたい。カフェで会いましょう")
    assert await found(api, user, q) == ([thread["id"]] if hit else [])


async def test_a_query_of_one_chinese_character_finds_nothing(api: Api, user: str) -> None:
    await make_thread(api, user, "东京")
    assert await found(api, user, "东") == []


# --- snippets ---------------------------------------------------------------------------------------------------


async def snippets(api: Api, user: str, q: str) -> list[str]:
    page = await search(api, user, q)
    return [match["snippet"] for result in page["data"] for match in result["matches"]]


@pytest.mark.parametrize("where", ["start", "middle", "end"])
async def test_a_snippet_is_at_most_200_characters_around_the_match(api: Api, user: str, where: str) -> None:
    before = {"start": "", "middle": "lorem ipsum " * 60, "end": "lorem ipsum " * 120}[where]
    after = {"start": " dolor sit" * 80, "middle": " dolor sit" * 50, "end": ""}[where]
    text = f"{before}zeppelin{after}"
    await make_thread(api, user, text)
    (snippet,) = await snippets(api, user, "zeppelin")
    assert "<mark>zeppelin</mark>" in snippet
    assert len(text_characters(snippet)) <= 200
    assert len(text_characters(snippet)) >= 50, snippet  # around the match: not just the word
    assert_snippet_of(snippet, text)


async def test_a_short_text_is_its_own_snippet(api: Api, user: str) -> None:
    text = "Short text: the zeppelin lands at noon."
    await make_thread(api, user, text)
    assert await snippets(api, user, "zeppelin") == ["Short text: the <mark>zeppelin</mark> lands at noon."]


async def test_every_matched_word_is_marked_as_written(api: Api, user: str) -> None:
    await make_thread(api, user, "Un Café, then the STRASSE, then a café again; cafeteria no.")
    (snippet,) = await snippets(api, user, "cafe straße")
    assert marked(snippet) == ["Café", "STRASSE", "café"]
    assert plain(snippet) == "Un Café, then the STRASSE, then a café again; cafeteria no."


async def test_a_prefix_marks_the_whole_word(api: Api, user: str) -> None:
    await make_thread(api, user, "zebras cross the zebra crossing")
    (snippet,) = await snippets(api, user, "zebr")
    assert marked(snippet) == ["zebras", "zebra"]


async def test_a_phrase_is_marked_and_its_words_elsewhere_are_not_words_of_a_match(api: Api, user: str) -> None:
    await make_thread(api, user, "a red apple, an apple")
    (snippet,) = await snippets(api, user, '"red apple"')
    assert plain(snippet) == "a red apple, an apple"
    assert "<mark>red</mark>" in snippet or "<mark>red apple</mark>" in snippet


async def test_excluded_words_are_not_marked(api: Api, user: str) -> None:
    await make_thread(api, user, "alpha and gamma")
    (snippet,) = await snippets(api, user, "alpha -beta")
    assert marked(snippet) == ["alpha"]


async def test_html_in_the_content_is_escaped(api: Api, user: str) -> None:
    text = "<script>alert('zeppelin')</script> & <b>bold</b> > <img src=x onerror=alert(1)>"
    await make_thread(api, user, text)
    (snippet,) = await snippets(api, user, "zeppelin")
    assert "<script" not in snippet and "<b>" not in snippet and "<img" not in snippet
    assert "&lt;script&gt;" in snippet and "&amp;" in snippet and "&gt;" in snippet
    assert marked(snippet) == ["zeppelin"]
    assert plain(snippet) == text


async def test_a_mark_tag_in_the_content_is_escaped_too(api: Api, user: str) -> None:
    text = "<mark>fake</mark> zeppelin </mark>"
    await make_thread(api, user, text)
    (snippet,) = await snippets(api, user, "zeppelin")
    assert marked(snippet) == ["zeppelin"]
    assert snippet.count("<mark>") == 1
    assert plain(snippet) == text


async def test_html_in_a_title_is_escaped(api: Api, user: str) -> None:
    await make_thread(api, user, "body", title="<i>zeppelin</i> & co")
    (snippet,) = await snippets(api, user, "zeppelin")
    assert snippet == "&lt;i&gt;<mark>zeppelin</mark>&lt;/i&gt; &amp; co"


async def test_the_200_characters_are_counted_before_escaping(api: Api, user: str) -> None:
    text = "&" * 150 + " zeppelin " + "<" * 150
    await make_thread(api, user, text)
    (snippet,) = await snippets(api, user, "zeppelin")
    assert "<mark>zeppelin</mark>" in snippet
    shown = text_characters(snippet)
    assert len(shown) <= 200
    assert len(shown) >= 150, "the escapes must not be counted against the 200 characters"
    assert_snippet_of(snippet, text)


async def test_a_chinese_match_is_marked_as_one_run(api: Api, user: str) -> None:
    await make_thread(api, user, "我想去东京都旅游")
    (snippet,) = await snippets(api, user, "东京都")
    assert plain(snippet) == "我想去东京都旅游"
    assert marked(snippet) == ["东京都"]


async def test_astral_characters_are_counted_as_one(api: Api, user: str) -> None:
    text = "🙂" * 150 + " zeppelin " + "🎉" * 150
    await make_thread(api, user, text)
    (snippet,) = await snippets(api, user, "zeppelin")
    assert "<mark>zeppelin</mark>" in snippet
    assert 150 <= len(text_characters(snippet)) <= 200
    assert_snippet_of(snippet, text)


# --- matches per thread ---------------------------------------------------------------------------------------


async def test_at_most_three_matches_per_thread_and_the_title_counts(api: Api, user: str) -> None:
    thread = await make_thread(api, user, *[f"zeppelin number {i}" for i in range(6)], title="All about zeppelin")
    page = await search(api, user, "zeppelin")
    (result,) = page["data"]
    assert result["thread"]["id"] == thread["id"]
    assert len(result["matches"]) == 3
    ids = {m["id"] for m in await messages_of(api, user, thread["id"])}
    assert {m["message_id"] for m in result["matches"]} <= ids | {None}


async def test_three_messages_of_a_thread_give_one_result(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "zeppelin a", "zeppelin b", "zeppelin c", "zeppelin d")
    page = await search(api, user, "zeppelin")
    assert thread_ids(page) == [thread["id"]]
    assert len(page["data"][0]["matches"]) == 3


async def test_matches_are_only_texts_that_match(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "zeppelin alpha", "zeppelin", "alpha", title="zeppelin")
    (result,) = (await search(api, user, "zeppelin alpha"))["data"]
    first = (await messages_of(api, user, thread["id"]))[0]
    assert [m["message_id"] for m in result["matches"]] == [first["id"]]


# --- limit, cursor, sort ------------------------------------------------------------------------------------------


async def varied_threads(api: Api, user: str) -> list[str]:
    """Nine threads that match `zeppelin` with scores of every kind, ties included, and two that do not."""
    ids = []
    for i, contents in enumerate(
        [
            ["zeppelin"],
            ["zeppelin"],
            ["zeppelin zeppelin zeppelin"],
            ["a long text " * 20 + "zeppelin"],
            ["zeppelin", "zeppelin again"],
            ["zeppelin"],
            ["zeppelins"],
            ["zeppelin here", "and zeppelin there", "and zeppelin everywhere", "zeppelin"],
            [],
        ]
    ):
        title = "zeppelin title" if i in (5, 8) else f"thread {i}"
        ids.append((await make_thread(api, user, *contents, title=title))["id"])
    await make_thread(api, user, "airship", title="blimp")
    await make_thread(api, user, "balloon")
    return ids


async def test_limit_bounds_a_page(api: Api, user: str) -> None:
    await varied_threads(api, user)
    page = await search(api, user, "zeppelin", limit=4)
    assert len(page["data"]) == 4 and page["has_more"] is True
    assert len((await search(api, user, "zeppelin", limit=1))["data"]) == 1
    assert len((await search(api, user, "zeppelin", limit=50))["data"]) == 9
    assert len((await search(api, user, "zeppelin"))["data"]) == 9  # the default, 20, holds them all


@pytest.mark.parametrize("sort", ["relevance", "recent"])
async def test_exactly_limit_results_have_no_more(api: Api, user: str, sort: str) -> None:
    for i in range(4):
        await make_thread(api, user, f"zeppelin {i}", "zeppelin again", "zeppelin thrice", "zeppelin more")
    page = await search(api, user, "zeppelin", limit=4, sort=sort)
    assert (len(page["data"]), page["has_more"], page["next_cursor"]) == (4, False, None)
    first = await search(api, user, "zeppelin", limit=2, sort=sort)
    second = await search(api, user, "zeppelin", limit=2, sort=sort, cursor=first["next_cursor"])
    assert (len(second["data"]), second["has_more"], second["next_cursor"]) == (2, False, None)


async def test_the_default_limit_is_20(api: Api, user: str) -> None:
    for i in range(22):
        await make_thread(api, user, f"zeppelin {i}")
    page = await search(api, user, "zeppelin")
    assert len(page["data"]) == 20 and page["has_more"] is True


@pytest.mark.parametrize("sort", ["relevance", "recent"])
@pytest.mark.parametrize("limit", [1, 2, 4])
async def test_pages_cover_every_matching_thread_once_in_the_order_of_one_page(
    api: Api, user: str, sort: str, limit: int
) -> None:
    ids = await varied_threads(api, user)
    whole = (await search(api, user, "zeppelin", sort=sort, limit=50))["data"]
    assert {r["thread"]["id"] for r in whole} == set(ids)
    pages = await walk(api, user, "zeppelin", sort=sort, limit=limit)
    assert all(len(page) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= limit, "a last page with no result: has_more was true on the page before"
    walked = [r["thread"]["id"] for page in pages for r in page]
    assert walked == [r["thread"]["id"] for r in whole]
    assert [r["score"] for page in pages for r in page] == [r["score"] for r in whole]


async def test_relevance_orders_by_score(api: Api, user: str) -> None:
    await varied_threads(api, user)
    for params in ({}, {"sort": "relevance"}):
        scores = [r["score"] for r in (await search(api, user, "zeppelin", **params))["data"]]
        assert scores == sorted(scores, reverse=True), scores


async def test_recent_is_newest_updated_at_first(api: Api, user: str) -> None:
    first = await make_thread(api, user, "zeppelin zeppelin zeppelin", title="zeppelin")
    second = await make_thread(api, user, "zeppelin")
    third = await make_thread(api, user, "zeppelin once")
    assert await found(api, user, "zeppelin", sort="recent") == [third["id"], second["id"], first["id"]]
    await append(api, user, first["id"], "a new message")
    page = await search(api, user, "zeppelin", sort="recent")
    assert thread_ids(page) == [first["id"], third["id"], second["id"]]
    stamps = [r["thread"]["updated_at"] for r in page["data"]]
    assert stamps == sorted(stamps, reverse=True)


async def test_a_title_change_moves_a_thread_in_recent(api: Api, user: str) -> None:
    first = await make_thread(api, user, "zeppelin")
    second = await make_thread(api, user, "zeppelin")
    response = await api.request("PATCH", f"/api/threads/{first['id']}", user=user, json={"title": "renamed"})
    assert response.status_code == 200, response.text
    assert await found(api, user, "zeppelin", sort="recent") == [first["id"], second["id"]]


async def test_a_cursor_keeps_its_query(api: Api, user: str) -> None:
    """A cursor of one search, sent with the same query, continues it; the filters stay those of the request."""
    ids = await varied_threads(api, user)
    page = await search(api, user, "zeppelin", limit=3, sort="recent")
    rest = await walk(api, user, "zeppelin", limit=3, sort="recent", cursor=page["next_cursor"])
    assert sorted(thread_ids(page) + [r["thread"]["id"] for p in rest for r in p]) == sorted(ids)


# --- status and metadata ----------------------------------------------------------------------------------------


async def test_status_filters(api: Api, user: str) -> None:
    active = await make_thread(api, user, "zeppelin active")
    archived = await make_thread(api, user, "zeppelin archived")
    assert (await api.request("DELETE", f"/api/threads/{archived['id']}", user=user)).status_code == 200
    assert await found(api, user, "zeppelin") == [active["id"]]
    assert await found(api, user, "zeppelin", status="active") == [active["id"]]
    assert await found(api, user, "zeppelin", status="archived") == [archived["id"]]
    assert await found_set(api, user, "zeppelin", status="all") == {active["id"], archived["id"]}
    (result,) = (await search(api, user, "zeppelin", status="archived"))["data"]
    assert result["thread"]["status"] == "archived" and result["thread"]["archived_at"] is not None


async def test_a_restored_thread_is_active_again(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "zeppelin")
    tid = thread["id"]
    assert (await api.request("DELETE", f"/api/threads/{tid}", user=user)).status_code == 200
    assert await found(api, user, "zeppelin") == []
    response = await api.request("PATCH", f"/api/threads/{tid}", user=user, json={"status": "active"})
    assert response.status_code == 200, response.text
    assert await found(api, user, "zeppelin") == [tid]


async def test_metadata_filters(api: Api, user: str) -> None:
    red_pt = await make_thread(api, user, "zeppelin", metadata={"team": "red", "lang": "pt"})
    red_en = await make_thread(api, user, "zeppelin", metadata={"team": "red", "lang": "en"})
    await make_thread(api, user, "zeppelin", metadata={"team": "blue"})
    await make_thread(api, user, "zeppelin", metadata={"team": 5})
    await make_thread(api, user, "airship", metadata={"team": "red"})
    assert await found_set(api, user, "zeppelin", **{"metadata.team": "red"}) == {red_pt["id"], red_en["id"]}
    assert await found(api, user, "zeppelin", **{"metadata.team": "red", "metadata.lang": "pt"}) == [red_pt["id"]]
    assert await found(api, user, "zeppelin", **{"metadata.team": "green"}) == []
    assert await found(api, user, "zeppelin", **{"metadata.team": "5"}) == []  # a string value only


async def test_metadata_and_status_filters_page_together(api: Api, user: str) -> None:
    wanted = []
    for _ in range(5):
        wanted.append((await make_thread(api, user, "zeppelin", metadata={"team": "red"}))["id"])
        await make_thread(api, user, "zeppelin", metadata={"team": "blue"})
    pages = await walk(api, user, "zeppelin", limit=2, **{"metadata.team": "red"})
    assert sorted(r["thread"]["id"] for p in pages for r in p) == sorted(wanted)


# --- in step with the data ---------------------------------------------------------------------------------------


async def test_an_appended_message_is_found_by_the_next_search(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "hello")
    assert await found(api, user, "zeppelin") == []
    message = await append(api, user, thread["id"], "the zeppelin arrives")
    (result,) = (await search(api, user, "zeppelin"))["data"]
    assert result["matches"][0]["message_id"] == message["id"]


async def test_a_failed_append_leaves_no_trace(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "hello")
    tid = thread["id"]
    assert (await api.request("DELETE", f"/api/threads/{tid}", user=user)).status_code == 200
    response = await api.request("POST", f"/api/threads/{tid}/messages", user=user, json={"content": "zeppelin"})
    assert response.status_code == 409, response.text
    bad_parent = await api.request(
        "POST", f"/api/threads/{tid}/messages", user=user, json={"content": "zeppelin", "parent_id": "msg_nope"}
    )
    assert bad_parent.status_code in (409, 422), bad_parent.text
    bad_create = await api.request(
        "POST", "/api/threads", user=user, json={"title": "zeppelin", "messages": [{"content": "zeppelin", "x": 1}]}
    )
    assert bad_create.status_code == 422, bad_create.text
    assert await found(api, user, "zeppelin", status="all") == []


async def test_an_in_progress_reply_is_found_once_its_closing_patch_ends_it(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "a question")
    tid = thread["id"]
    reply = await start_reply(api, user, tid, "the zeppelin")
    assert (await delta(api, user, tid, reply["id"], 12, " hovers")).status_code == 200
    assert await found(api, user, "zeppelin") == []
    assert await found(api, user, "hovers") == []
    response = await patch(api, user, tid, reply["id"], status="completed", finish_reason="stop")
    assert response.status_code == 200, response.text
    (result,) = (await search(api, user, "zeppelin hovers"))["data"]
    snippet = "the <mark>zeppelin</mark> <mark>hovers</mark>"
    assert result["matches"] == [{"message_id": reply["id"], "snippet": snippet}]


async def test_a_closing_patch_with_content_indexes_that_content(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "a question")
    tid = thread["id"]
    reply = await start_reply(api, user, tid, "draft airship")
    response = await patch(api, user, tid, reply["id"], status="incomplete", content="final zeppelin")
    assert response.status_code == 200, response.text
    assert await found(api, user, "zeppelin") == [tid]
    assert await found(api, user, "airship") == []


async def test_content_patched_before_the_end_is_indexed_at_the_end(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "a question")
    tid = thread["id"]
    reply = await start_reply(api, user, tid, "draft airship")
    assert (await patch(api, user, tid, reply["id"], content="rewritten zeppelin")).status_code == 200
    assert await found(api, user, "zeppelin") == []
    assert (await patch(api, user, tid, reply["id"], status="completed")).status_code == 200
    assert await found(api, user, "zeppelin") == [tid]
    assert await found(api, user, "airship") == []


async def test_an_in_progress_initial_message_is_found_once_ended(api: Api, user: str) -> None:
    created = await api.request(
        "POST",
        "/api/threads",
        user=user,
        json={"messages": [{"content": "q"}, {"role": "assistant", "content": "zeppelin", "status": "in_progress"}]},
    )
    assert created.status_code == 201, created.text
    tid = created.json()["id"]
    assert await found(api, user, "zeppelin") == []
    reply_id = created.json()["current_message_id"]
    assert (await patch(api, user, tid, reply_id, status="completed")).status_code == 200
    assert await found(api, user, "zeppelin") == [tid]


async def test_a_reply_ended_with_parts_is_found_by_its_text_parts(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "a question")
    tid = thread["id"]
    reply = await start_reply(api, user, tid)
    parts = [
        {"type": "reasoning", "text": "thinking about airships"},
        {"type": "text", "text": "the zeppelin answer"},
        {"type": "tool_call", "id": "call_1", "name": "blimp_lookup", "arguments": '{"balloon": 1}'},
    ]
    assert (await patch(api, user, tid, reply["id"], status="completed", content=parts)).status_code == 200
    assert await found(api, user, "zeppelin answer") == [tid]
    (result,) = (await search(api, user, "zeppelin"))["data"]
    assert [m["message_id"] for m in result["matches"]] == [reply["id"]]
    assert "airships" not in plain(result["matches"][0]["snippet"])


async def test_only_titles_and_text_are_searched(api: Api, user: str) -> None:
    """Search reads string content and `text` parts (API.md "Structured content"): not reasoning, tool calls,
    tool results, metadata, model names or feedback."""
    thread = await make_thread(api, user, "plain", title="title", metadata={"tag": "walrus"})
    tid = thread["id"]
    await append(
        api,
        user,
        tid,
        [
            {"type": "text", "text": "visible zeppelin"},
            {"type": "reasoning", "text": "hidden airship"},
            {"type": "tool_call", "id": "call_1", "name": "blimp", "arguments": '{"balloon": "dirigible"}'},
        ],
        role="assistant",
        model="narwhal-1",
        metadata={"note": "okapi"},
    )
    await append(api, user, tid, [{"type": "tool_result", "tool_call_id": "call_1", "content": "gondola"}], role="tool")
    last = await append(api, user, tid, "rated", role="assistant")
    feedback = {"rating": "up", "comment": "quokka"}
    url = f"/api/threads/{tid}/messages/{last['id']}/feedback"
    response = await api.request("PUT", url, user=user, json=feedback)
    assert response.status_code == 200, response.text
    assert await found(api, user, "zeppelin") == [tid]
    for word in ("walrus", "airship", "blimp", "balloon", "dirigible", "narwhal", "okapi", "gondola", "quokka"):
        assert await found(api, user, f'"{word}"') == [], word


@pytest.mark.parametrize("settings_overrides", [{"stale_message_seconds": 1.0}])
async def test_a_reply_ended_by_the_stale_sweep_is_found(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "a question")
    tid = thread["id"]
    reply = await start_reply(api, user, tid, "the zeppelin")
    assert (await delta(api, user, tid, reply["id"], 12, " hovers")).status_code == 200
    assert await found(api, user, "zeppelin") == []
    deadline = time.monotonic() + 15
    while True:
        response = await api.request("GET", f"/api/threads/{tid}/messages/{reply['id']}", user=user)
        if response.json()["status"] != "in_progress":
            break
        assert time.monotonic() < deadline, "the stale sweep did not end the reply"
        await asyncio.sleep(0.1)
    assert response.json()["finish_reason"] == "timeout"
    (result,) = (await search(api, user, "zeppelin hovers"))["data"]
    snippet = "the <mark>zeppelin</mark> <mark>hovers</mark>"
    assert result["matches"] == [{"message_id": reply["id"], "snippet": snippet}]


async def test_a_title_change_is_found_and_the_old_title_no_more(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "body", title="walrus")
    tid = thread["id"]
    assert await found(api, user, "walrus") == [tid]
    response = await api.request("PATCH", f"/api/threads/{tid}", user=user, json={"title": "narwhal"})
    assert response.status_code == 200, response.text
    assert await found(api, user, "walrus") == []
    (result,) = (await search(api, user, "narwhal"))["data"]
    assert result["matches"] == [{"message_id": None, "snippet": "<mark>narwhal</mark>"}]
    cleared = await api.request("PATCH", f"/api/threads/{tid}", user=user, json={"title": None})
    assert cleared.status_code == 200, cleared.text
    assert await found(api, user, "narwhal") == []


async def test_a_title_set_by_auto_rename_is_found(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "Lisbon trip with kids in March: can you help me plan three days?")
    tid = thread["id"]
    renamed = await api.request("POST", f"/api/threads/{tid}/auto-rename", user=user)
    assert renamed.status_code == 200, renamed.text
    title = renamed.json()["title"]
    assert "Lisbon" in title, title
    (result,) = (await search(api, user, f'"{title}"'))["data"]
    assert None in [m["message_id"] for m in result["matches"]]


async def test_a_deleted_branch_is_no_more_found(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "root question")
    tid = thread["id"]
    root = (await messages_of(api, user, tid))[0]
    doomed = await append(api, user, tid, "walrus answer", role="assistant", parent_id=root["id"])
    await append(api, user, tid, "narwhal follow-up", parent_id=doomed["id"])
    kept = await append(api, user, tid, "walrus other answer", role="assistant", parent_id=root["id"])
    assert (await api.request("DELETE", f"/api/threads/{tid}/messages/{doomed['id']}", user=user)).status_code == 204
    assert await found(api, user, "narwhal") == []
    (result,) = (await search(api, user, "walrus"))["data"]
    assert [m["message_id"] for m in result["matches"]] == [kept["id"]]


async def test_a_deleted_branch_no_more_excludes_its_thread(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "walrus question")
    tid = thread["id"]
    root = (await messages_of(api, user, tid))[0]
    doomed = await append(api, user, tid, "a narwhal answer", role="assistant", parent_id=root["id"])
    assert await found(api, user, "walrus -narwhal") == []
    assert (await api.request("DELETE", f"/api/threads/{tid}/messages/{doomed['id']}", user=user)).status_code == 204
    assert await found(api, user, "walrus -narwhal") == [tid]


async def test_messages_of_every_role_are_found(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "hello")
    tid = thread["id"]
    for role, word in (("system", "walrus"), ("assistant", "narwhal"), ("tool", "okapi"), ("user", "quokka")):
        message = await append(api, user, tid, f"a {word} here", role=role)
        (result,) = (await search(api, user, word))["data"]
        assert [m["message_id"] for m in result["matches"]] == [message["id"]], role


async def test_a_permanently_deleted_thread_is_no_more_found(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "walrus", title="walrus")
    kept = await make_thread(api, user, "walrus")
    response = await api.request("DELETE", f"/api/threads/{thread['id']}", user=user, params={"permanent": "true"})
    assert response.status_code == 204, response.text
    assert await found(api, user, "walrus", status="all") == [kept["id"]]


async def test_a_forks_copies_are_found_in_the_fork(api: Api, user: str) -> None:
    source = await make_thread(api, user, "walrus question", "walrus answer", "narwhal later", title="Sea life")
    first, second, _ = await messages_of(api, user, source["id"])
    response = await api.request(
        "POST", f"/api/threads/{source['id']}/fork", user=user, json={"message_id": second["id"]}
    )
    assert response.status_code == 201, response.text
    fork = response.json()
    assert await found_set(api, user, "walrus") == {source["id"], fork["id"]}
    assert await found(api, user, "narwhal") == [source["id"]]  # not copied
    copies = {m["id"] for m in await messages_of(api, user, fork["id"])}
    (result,) = [r for r in (await search(api, user, "walrus"))["data"] if r["thread"]["id"] == fork["id"]]
    assert {m["message_id"] for m in result["matches"]} == copies
    (titled,) = [r for r in (await search(api, user, "sea life"))["data"] if r["thread"]["id"] == fork["id"]]
    assert titled["matches"] == [{"message_id": None, "snippet": "<mark>Sea</mark> <mark>life</mark>"}]
    assert first["id"] not in copies


async def test_a_forked_in_progress_reply_is_found_in_the_fork(api: Api, user: str) -> None:
    """The fork copies an in_progress reply as `incomplete`: ended, so indexed there; the source's stays
    unindexed until it ends."""
    source = await make_thread(api, user, "a question")
    reply = await start_reply(api, user, source["id"], "a walrus so far")
    response = await api.request("POST", f"/api/threads/{source['id']}/fork", user=user, json={})
    assert response.status_code == 201, response.text
    fork = response.json()
    copied = (await messages_of(api, user, fork["id"]))[-1]
    assert (copied["status"], copied["content"]) == ("incomplete", "a walrus so far")
    (result,) = (await search(api, user, "walrus"))["data"]
    assert result["thread"]["id"] == fork["id"]
    assert [m["message_id"] for m in result["matches"]] == [copied["id"]]
    assert (await patch(api, user, source["id"], reply["id"], status="completed")).status_code == 200
    assert await found_set(api, user, "walrus") == {source["id"], fork["id"]}


async def test_a_fork_with_a_title_of_its_own(api: Api, user: str) -> None:
    source = await make_thread(api, user, "walrus", title="Sea life")
    response = await api.request("POST", f"/api/threads/{source['id']}/fork", user=user, json={"title": "Tundra"})
    assert response.status_code == 201, response.text
    fork = response.json()
    assert await found(api, user, "tundra") == [fork["id"]]
    assert await found(api, user, '"sea life"') == [source["id"]]


# --- long texts: matched as short ones, on both databases ---------------------------------------------------


def cjk_text(length: int, seed: int = 7) -> str:
    """`length` Han characters, pseudo-random (distinct pairs), none of 东, 京 or 都."""
    avoid = {"东", "京", "都"}
    out: list[str] = []
    value = seed
    while len(out) < length:
        value = (value * 1_103_515_245 + 12_345) % 2**31
        char = chr(0x4E00 + value % 20_000)
        if char not in avoid:
            out.append(char)
    return "".join(out)


# PostgreSQL's tsvector keeps positions up to 16,383, at most 256 positions of a word, and 1 MB in all; both
# databases are given the same bounds (db/search_terms.py), so the same query finds the same threads on both
# (docs/api.md "Search"): past them an occurrence is a word but in no phrase (a CJK run of 3 or more characters
# is a phrase of pairs), and the distinct words of a message past 1 MB are not indexed. These pin the bound.


async def test_a_phrase_deep_in_a_long_message(api: Api, user: str) -> None:
    """Past the 16,383rd word: PostgreSQL's tsvector positions stop there."""
    thread = await make_thread(api, user, "lorem " * 17_000 + "red apple")
    assert await found(api, user, "red apple") == [thread["id"]]
    assert await found(api, user, '"red apple"') == []
    near = await make_thread(api, user, "lorem " * 16_000 + "blue pear")
    assert await found(api, user, '"blue pear"') == [near["id"]]


async def test_a_phrase_after_its_word_repeated_300_times(api: Api, user: str) -> None:
    """A word's 257th occurrence and after: PostgreSQL keeps at most 256 positions of a lexeme."""
    thread = await make_thread(api, user, "apple " * 300 + "red apple")
    assert await found(api, user, "apple red") == [thread["id"]]
    assert await found(api, user, '"red apple"') == []
    near = await make_thread(api, user, "apple " * 100 + "green apple")
    assert await found(api, user, '"green apple"') == [near["id"]]


async def test_a_chinese_run_deep_in_a_long_message(api: Api, user: str) -> None:
    thread = await make_thread(api, user, cjk_text(20_000) + "东京都")
    assert await found(api, user, "东京") == [thread["id"]]
    assert await found(api, user, "东京都") == []
    near = await make_thread(api, user, cjk_text(100) + "东京都")
    assert await found(api, user, "东京都") == [near["id"]]


async def test_a_word_at_the_end_of_the_longest_chinese_message(api: Api, user: str) -> None:
    """262,143 pairs, nearly all distinct: more than a PostgreSQL tsvector's 1 MB. The write succeeds on both."""
    thread = await make_thread(api, user, cjk_text(262_144 - len(" zeppelin")) + " zeppelin")
    assert await found(api, user, "zeppelin") == []
    assert await found(api, user, cjk_text(4)) == [thread["id"]]  # its first words are indexed


async def test_the_snippet_of_a_phrase_shows_the_phrase(api: Api, user: str) -> None:
    text = "apple " * 40 + "lorem ipsum " * 30 + "a red apple at last"
    await make_thread(api, user, text)
    (snippet,) = await snippets(api, user, '"red apple"')
    assert "red" in marked(snippet) or "red apple" in marked(snippet), snippet
