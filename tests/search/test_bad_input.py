"""GET /api/search with bad or hostile input, on SQLite, PostgreSQL and PostgreSQL through PgBouncer: `q`,
`limit`, `cursor`, `status`, `sort` and `metadata.<key>` out of their bounds are 422 (a bad cursor as the thread
list answers one); a query that is only operators or stop characters, unbalanced quotes, `-` alone, 256
characters of CJK, and SQL / FTS syntax (`'`, `"`, `*`, `:`, `(`, `NEAR`, `AND`, `OR`, `\\`, tsquery's `&`, `|`,
`!`, `<->`, `:*`), alone and inside words, answer 200 (or 422) and never 500 — searched against threads that hold
those very characters, so each query reaches the database's matching.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import Api
from tests.http.problems import assert_problem
from tests.search.helpers import URL, assert_page_shape, found, make_thread, search, search_response
from tests.threads.helpers import assert_validation_error

pytestmark = pytest.mark.through_pgbouncer

NUL = "\x00"

HOSTILE_TEXTS = [
    'it\'s a "quoted" word * star : colon ( paren ) and \\ backslash',
    "NEAR AND OR NOT near and or not",
    "foo & bar | baz ! qux <-> quux :* 'x':A",
    "SELECT * FROM messages WHERE 1=1; DROP TABLE threads; --",
    "100% of_the %_% LIKE patterns ^start {col}: +plus -minus",
    "东京都 東京都に行きたい ภาษาไทย",
]

# Alone, and inside words.
SYNTAX = ["'", '"', "*", ":", "(", ")", "NEAR", "AND", "OR", "NOT", "\\", "^", "+", "-", "{", "}", "&", "|", "!"]

HOSTILE_QUERIES = [
    *SYNTAX,
    *[f"foo{c}bar" for c in SYNTAX],
    *[f"it{c}s" for c in SYNTAX],
    *[f"{c}foo" for c in SYNTAX],
    *[f"foo{c}" for c in SYNTAX],
    *[f"foo {c} bar" for c in SYNTAX],
    "NEAR(foo bar)",
    "NEAR(foo bar, 2)",
    "foo NEAR bar",
    "foo AND bar",
    "foo OR bar",
    "foo NOT bar",
    "NOT foo",
    "AND OR NOT NEAR",
    "near and or not",
    "terms:foo",
    "owner:foo",
    "{owner terms}: foo",
    "search_fts:foo",
    "rank:foo",
    "foo:*",
    "foo:A",
    "'foo':*",
    "foo & bar",
    "foo | bar",
    "!foo",
    "foo <-> bar",
    "foo <2> bar",
    "(foo | bar) & !baz",
    "' OR '1'='1",
    "'; DROP TABLE threads; --",
    '" OR ""="',
    "%",
    "_",
    "%_%",
    "100%",
    "\\\\",
    "\\'",
    '\\"',
    "foo\\",
    '"foo',
    'foo"',
    '"foo" "bar',
    '"""',
    '""""',
    '"-foo"',
    '-"',
    '-"foo',
    "--foo",
    "- -",
    "-",
    "- - -",
    '"" ""',
    '-""',
    "*:*",
    "*foo*",
    "^foo",
    "+foo",
    ".,;:!?",
    "。、\uff01\uff1f「」",
    "🙂🙂🙂",
    "🙂 foo",
    "\u200b",
    "\u200bfoo\u200b",
    "\ufeff",
    "a\u0301",
    "\u0301",
    "\t\n\r",
    "东",
    "东京",
    "東京都に",
    "ภาษา",
    "x" * 256,
    "东" * 256,
    "東京" * 128,
    "\U00020000" * 256,  # astral CJK: 256 characters, 512 UTF-16 units
    "🙂" * 256,
    " ".join("abcdefghijklmnopqrstuvwxyz" * 5)[:256],  # 128 words of one letter
    " ".join(f"w{i}" for i in range(100))[:256],
    " ".join(f"-w{i}" for i in range(80))[:256],
    ('"a b" ' * 50)[:256],
    ("foo* " * 60)[:256],
    ("(" * 256),
    ('"' * 256),
    ("-" * 256),
    ("'" * 256),
]


async def seed(api: Api, user: str) -> None:
    for text in HOSTILE_TEXTS:
        await make_thread(api, user, text, title=text[:40])


async def test_hostile_queries_answer_200_or_422_never_500(api: Api, user: str, subtests: pytest.Subtests) -> None:
    await seed(api, user)
    for q in HOSTILE_QUERIES:
        for sort in ("relevance", "recent"):
            with subtests.test(q=repr(q)[:60], sort=sort):
                response = await search_response(api, user, q, sort=sort)
                assert response.status_code in (200, 422), response.text
                if response.status_code == 200:
                    assert_page_shape(response.json())
                else:
                    assert_problem(response, 422)


async def test_query_of_no_word_is_an_empty_result(api: Api, user: str, subtests: pytest.Subtests) -> None:
    await seed(api, user)
    no_word = ["-", "- - -", '"', '""', '"" ""', '-""', "*", ":", "(", "\\", ".,;:!?", "。、\uff01\uff1f", "🙂🙂", "东"]
    for q in [*no_word, "-foo"]:
        with subtests.test(q=q):
            response = await search_response(api, user, q)
            assert response.status_code in (200, 422), response.text
            if response.status_code == 200:
                assert response.json() == {"object": "list", "data": [], "next_cursor": None, "has_more": False}


async def test_fts_keywords_are_plain_words(api: Api, user: str, subtests: pytest.Subtests) -> None:
    keywords = await make_thread(api, user, "near and or not")
    await make_thread(api, user, "a zebra crossing")  # no word begins with near, and, or, not
    for q in ["NEAR", "AND", "OR", "NOT", '"near and"', "and or", "NOT near", "near -xyz"]:
        with subtests.test(q=q):
            assert await found(api, user, q) == [keywords["id"]]


async def test_syntax_characters_split_words(api: Api, user: str, subtests: pytest.Subtests) -> None:
    thread = await make_thread(api, user, "it's foo bar, done")
    for q in ["it's", "it*s", "it:s", "it(s", "it\\s", "it's foo", "foo:bar", "foo*bar", '"foo"bar', "foo&bar"]:
        with subtests.test(q=q):
            assert await found(api, user, q) == [thread["id"]]


async def test_an_unclosed_quote_runs_to_the_end(api: Api, user: str) -> None:
    thread = await make_thread(api, user, "red apple pie")
    await make_thread(api, user, "apple red pie")
    assert await found(api, user, '"red apple') == [thread["id"]]
    assert await found(api, user, 'pie "red apple') == [thread["id"]]


async def test_256_characters_of_cjk(api: Api, user: str) -> None:
    text = "".join(chr(0x4E00 + (i * 37) % 20000) for i in range(256))
    thread = await make_thread(api, user, text)
    assert await found(api, user, text) == [thread["id"]]
    assert await found(api, user, text[100:180]) == [thread["id"]]


# --- q, limit, status, sort ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["", "x" * 257, "东" * 257, "\U00020000" * 257])
async def test_q_of_0_or_more_than_256_characters_is_422(api: Api, user: str, q: str) -> None:
    assert_validation_error(await search_response(api, user, q), "q")


async def test_q_is_required(api: Api, user: str) -> None:
    assert_validation_error(await search_response(api, user, None), "q")


@pytest.mark.parametrize("q", ["x" * 256, "\U00020000" * 256, "é" * 256, "x"])
async def test_q_of_1_to_256_characters_is_accepted(api: Api, user: str, q: str) -> None:
    await search(api, user, q)


@pytest.mark.parametrize("limit", ["0", "51", "-1", "abc", "1.5", "", "1e1", "9" * 30])
async def test_limit_out_of_1_to_50_is_422(api: Api, user: str, limit: str) -> None:
    assert_validation_error(await search_response(api, user, "foo", limit=limit), "limit")


@pytest.mark.parametrize("limit", ["1", "50"])
async def test_limit_of_1_and_50_is_accepted(api: Api, user: str, limit: str) -> None:
    await search(api, user, "foo", limit=limit)


@pytest.mark.parametrize(("name", "value"), [("status", "deleted"), ("status", ""), ("sort", "newest"), ("sort", "")])
async def test_status_and_sort_out_of_their_values_are_422(api: Api, user: str, name: str, value: str) -> None:
    assert_validation_error(await search_response(api, user, "foo", **{name: value}), name)


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode()


GARBAGE_CURSORS = [
    "garbage",
    "!!!",
    "e30",  # base64 of {}
    b64(b"[1, 2]"),
    b64(b'["not a time", "thr_x"]'),
    b64(b'["2026-01-01T00:00:00+00:00"]'),
    b64(json.dumps([1e308, "thr_x"]).encode()),
    b64(json.dumps(["NaN", f"thr_{NUL}"]).encode()),
    b64(b"\xff\xfe"),
    "ünïcode",
    "a" * 2000,
]


async def test_a_garbage_cursor_is_422_as_in_the_thread_list(api: Api, user: str, subtests: pytest.Subtests) -> None:
    await make_thread(api, user, "foo")
    for cursor in GARBAGE_CURSORS:
        for sort in ("relevance", "recent"):
            with subtests.test(cursor=repr(cursor)[:40], sort=sort):
                assert_validation_error(await search_response(api, user, "foo", cursor=cursor, sort=sort), "cursor")


FORGED_CURSORS = [
    b64(json.dumps([1e308, "2026-01-01T00:00:00+00:00", "thr_x"]).encode()),
    b64(json.dumps([-1e308, "2026-01-01T00:00:00+00:00", "thr_x"]).encode()),
    b64(json.dumps([5e-324, "2026-01-01T00:00:00+00:00", "thr_x"]).encode()),
    b64(json.dumps([2**63 - 1, "2026-01-01T00:00:00+00:00", "thr_x"]).encode()),
    b64(json.dumps([0, "0001-01-01T00:00:00+05:00", "thr_x"]).encode()),
    b64(json.dumps([0, "9999-12-31T23:59:59-05:00", "thr_x"]).encode()),
    b64(json.dumps([0, "2026-01-01T00:00:00+00:00", f"thr_{NUL}"]).encode()),
    b64(json.dumps([0, "2026-01-01T00:00:00+00:00", "x" * 5000]).encode()),
    b64(json.dumps([0, "2026-01-01", "thr_x"]).encode()),
    b64(json.dumps([True, "2026-01-01T00:00:00+00:00", "thr_x"]).encode()),
    b64(json.dumps(["1", "2026-01-01T00:00:00+00:00", "thr_x"]).encode()),
    b64(json.dumps([1, "2026-01-01T00:00:00+00:00", "thr_x", "extra"]).encode()),
]


async def test_a_forged_cursor_is_200_or_422(api: Api, user: str, subtests: pytest.Subtests) -> None:
    await make_thread(api, user, "foo")
    for cursor in FORGED_CURSORS:
        for sort in ("relevance", "recent"):
            with subtests.test(cursor=repr(cursor)[:40], sort=sort):
                response = await search_response(api, user, "foo", cursor=cursor, sort=sort)
                assert response.status_code in (200, 422), response.text
                if response.status_code == 200:
                    assert_page_shape(response.json())
                else:
                    assert_validation_error(response, "cursor")


async def test_a_cursor_of_another_query_or_sort_is_200_or_422(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for i in range(4):
        await make_thread(api, user, f"foo bar {i}")
    thread_cursor = (await api.request("GET", "/api/threads", user=user, params={"limit": 1})).json()["next_cursor"]
    cursors: dict[str, str] = {"thread list": thread_cursor}
    for sort in ("relevance", "recent"):
        cursors[sort] = (await search(api, user, "foo", limit=1, sort=sort))["next_cursor"]
    for name, cursor in cursors.items():
        for q, sort in [("foo", "relevance"), ("foo", "recent"), ("bar", "relevance"), ("bar", "recent")]:
            with subtests.test(cursor=name, q=q, sort=sort):
                response = await search_response(api, user, q, cursor=cursor, sort=sort)
                assert response.status_code in (200, 422), response.text
                if response.status_code == 200:
                    assert_page_shape(response.json())
                else:
                    assert_validation_error(response, "cursor")


# --- metadata filters, as in the thread list ----------------------------------------------------------------


async def test_a_metadata_filter_without_a_key_is_422(api: Api, user: str) -> None:
    assert_problem(await search_response(api, user, "foo", **{"metadata.": "x"}), 422)


async def test_more_than_16_metadata_filters_are_422(api: Api, user: str) -> None:
    params = {f"metadata.k{i}": "v" for i in range(17)}
    assert_problem(await search_response(api, user, "foo", **params), 422)
    await search(api, user, "foo", **dict(list(params.items())[:16]))


async def test_a_metadata_filter_holding_nul_matches_nothing(api: Api, user: str) -> None:
    await make_thread(api, user, "foo", metadata={"k": "v"})
    for param in [{"metadata.k": f"v{NUL}"}, {f"metadata.k{NUL}": "v"}]:
        response = await search_response(api, user, "foo", **param)
        assert response.status_code in (200, 422), response.text
        if response.status_code == 200:
            assert response.json()["data"] == []


# --- bytes no database can take ---------------------------------------------------------------------------------


@pytest.mark.parametrize("q", [NUL, f"foo{NUL}", f"{NUL}foo", f"foo {NUL} bar", f'"{NUL}"', f"-{NUL}"])
async def test_q_holding_nul_is_200_or_422(api: Api, user: str, q: str) -> None:
    await make_thread(api, user, "foo bar")
    response = await search_response(api, user, q)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 422:
        assert_validation_error(response, "q")


@pytest.mark.parametrize("raw", ["%FF", "%ED%A0%80", "foo%C3", "%C0%AF", "%00"])
async def test_q_of_bytes_that_are_not_utf_8_is_a_client_error(api: Api, user: str, raw: str) -> None:
    response = await api.request("GET", f"{URL}?q={raw}", user=user)
    assert response.status_code in (200, 400, 422), response.text
    if response.status_code != 200:
        body: dict[str, Any] = assert_problem(response, response.status_code)
        assert "Traceback" not in json.dumps(body)


async def test_unauthenticated_is_401(api: Api) -> None:
    response = await api.client.get(URL, params={"q": "foo"})
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")
