"""Requests and assertions shared by the search tests: `search` checks the shape of every answer it gets
(API.md "Search"), so every test that searches also checks the shape, the 3-match bound, each thread once,
and that every snippet is safe to insert into a page."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx

from tests.conftest import Api

URL = "/api/search"
PAGE_FIELDS = {"object", "data", "next_cursor", "has_more"}
RESULT_FIELDS = {"object", "thread", "score", "matches"}
MATCH_FIELDS = {"message_id", "snippet"}
SNIPPET_CHARACTERS = 200

_MARK = re.compile(r"(<mark>|</mark>)")
_ENTITY = re.compile(r"&(?:lt|gt|amp|quot|apos|#39|#x27|#34|#x22);")
_ELLIPSIS = "…"


async def search_response(api: Api, user: str, q: str | None, **params: Any) -> httpx.Response:
    query = dict(params)
    if q is not None:
        query["q"] = q
    return await api.request("GET", URL, user=user, params=query)


async def search(api: Api, user: str, q: str, **params: Any) -> dict[str, Any]:
    """One page of results, its shape checked."""
    response = await search_response(api, user, q, **params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    page: dict[str, Any] = response.json()
    assert_page_shape(page)
    return page


def assert_page_shape(page: dict[str, Any]) -> None:
    assert set(page) == PAGE_FIELDS, page
    assert page["object"] == "list"
    assert isinstance(page["has_more"], bool)
    if page["has_more"]:
        assert isinstance(page["next_cursor"], str) and page["next_cursor"], page
    else:
        assert page["next_cursor"] is None, page
    ids = [result["thread"]["id"] for result in page["data"]]
    assert len(ids) == len(set(ids)), f"a thread appears more than once: {ids}"
    for result in page["data"]:
        assert set(result) == RESULT_FIELDS, result
        assert result["object"] == "search_result"
        assert result["thread"]["object"] == "thread"
        score = result["score"]
        assert isinstance(score, int | float) and not isinstance(score, bool), score
        matches = result["matches"]
        assert isinstance(matches, list) and 1 <= len(matches) <= 3, result
        named = [m["message_id"] for m in matches]
        assert len(named) == len(set(named)), f"a message (or the title) matched twice: {named}"
        for match in matches:
            assert set(match) == MATCH_FIELDS, match
            assert match["message_id"] is None or isinstance(match["message_id"], str)
            assert_safe_snippet(match["snippet"])


def assert_safe_snippet(snippet: str) -> None:
    """Insertable into a page as it is: the only tags are balanced, non-empty `<mark>`s; every other `<`, `>`
    and `&` escaped; at most 200 characters of text before marking and escaping."""
    assert isinstance(snippet, str) and snippet, snippet
    inside = False
    for piece in _MARK.split(snippet):
        if piece == "<mark>":
            assert not inside, f"nested <mark>: {snippet!r}"
            inside = True
        elif piece == "</mark>":
            assert inside, f"</mark> without <mark>: {snippet!r}"
            inside = False
        else:
            assert "<" not in piece and ">" not in piece, f"unescaped < or > in {snippet!r}"
            assert "&" not in _ENTITY.sub("", piece), f"unescaped & in {snippet!r}"
    assert not inside, f"unclosed <mark>: {snippet!r}"
    assert "<mark></mark>" not in snippet, snippet
    assert len(text_characters(snippet)) <= SNIPPET_CHARACTERS, (len(text_characters(snippet)), snippet)


def plain(snippet: str) -> str:
    """The snippet's text: marks removed, escapes undone."""
    return html.unescape(_MARK.sub("", snippet))


def text_characters(snippet: str) -> str:
    """The characters of the text a snippet shows, without an ellipsis it may add at either end."""
    text = plain(snippet)
    return text.removeprefix(_ELLIPSIS).removesuffix(_ELLIPSIS)


def marked(snippet: str) -> list[str]:
    """The marked stretches of a snippet, unescaped; adjacent marks joined into one stretch."""
    joined = snippet.replace("</mark><mark>", "")
    return [html.unescape(found) for found in re.findall(r"<mark>(.*?)</mark>", joined)]


def assert_snippet_of(snippet: str, text: str) -> None:
    """The snippet shows a piece of `text` (an ellipsis at either end allowed)."""
    shown = text_characters(snippet)
    assert shown in text, (snippet, text)


def thread_ids(page: dict[str, Any]) -> list[str]:
    return [result["thread"]["id"] for result in page["data"]]


async def found(api: Api, user: str, q: str, **params: Any) -> list[str]:
    """The ids of every matching thread, in the answer's order (one page of 50, which must be all)."""
    page = await search(api, user, q, limit=50, **params)
    assert page["has_more"] is False, "more than 50 results: the test's corpus is too big for `found`"
    return thread_ids(page)


async def found_set(api: Api, user: str, q: str, **params: Any) -> set[str]:
    return set(await found(api, user, q, **params))


async def walk(api: Api, user: str, q: str, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page, following next_cursor until has_more is false."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = await search(api, user, q, **query)
        pages.append(page["data"])
        if not page["has_more"]:
            return pages
        cursor = page["next_cursor"]
        assert len(pages) < 200, "pagination does not end"


async def make_thread(api: Api, user: str, *contents: str, **body: Any) -> dict[str, Any]:
    """A thread of `user` with `contents` as its initial messages (a chain)."""
    if contents:
        body["messages"] = [{"content": content} for content in contents]
    return await api.create_thread(user, **body)


async def append(api: Api, user: str, thread_id: str, content: Any, **body: Any) -> dict[str, Any]:
    response = await api.request(
        "POST", f"/api/threads/{thread_id}/messages", user=user, json={"content": content, **body}
    )
    assert response.status_code == 201, response.text
    message: dict[str, Any] = response.json()
    return message


async def messages_of(api: Api, user: str, thread_id: str) -> list[dict[str, Any]]:
    response = await api.request("GET", f"/api/threads/{thread_id}/messages?view=all&limit=100", user=user)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def get_thread(api: Api, user: str, thread_id: str) -> dict[str, Any]:
    response = await api.request("GET", f"/api/threads/{thread_id}", user=user)
    assert response.status_code == 200, response.text
    thread: dict[str, Any] = response.json()
    return thread
