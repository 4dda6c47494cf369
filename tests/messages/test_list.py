"""GET /api/threads/{id}/messages: limits, order, keyset pagination, cursors and ownership."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.conftest import Api, Factory, new_user
from tests.http.problems import assert_problem


def url(thread_id: str) -> str:
    return f"/api/threads/{thread_id}/messages"


async def thread_with(create_thread: Factory, count: int) -> dict[str, Any]:
    roles = ["user", "assistant"]
    return await create_thread(messages=[{"content": f"m{i}", "role": roles[(i - 1) % 2]} for i in range(1, count + 1)])


async def list_page(api: Api, user: str, thread_id: str, **params: Any) -> dict[str, Any]:
    response = await api.request("GET", url(thread_id), user=user, params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


async def walk(api: Api, user: str, thread_id: str, **params: Any) -> tuple[list[int], int]:
    """All seqs across every page, and the number of pages."""
    seqs: list[int] = []
    pages = 0
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        page = await list_page(api, user, thread_id, **query)
        pages += 1
        seqs += [m["seq"] for m in page["data"]]
        assert page["has_more"] == (page["next_cursor"] is not None)
        if not page["has_more"]:
            return seqs, pages
        cursor = page["next_cursor"]
        assert pages < 100, "pagination does not end"


async def test_list_shape(api: Api, user: str, create_thread: Factory) -> None:
    thread = await thread_with(create_thread, 2)
    page = await list_page(api, user, thread["id"])
    assert set(page) == {"object", "data", "next_cursor", "has_more"}
    assert page["object"] == "list"
    assert page["has_more"] is False and page["next_cursor"] is None
    first = page["data"][0]
    assert first["object"] == "message" and first["thread_id"] == thread["id"]
    assert first["role"] == "user" and first["content"] == "m1" and first["metadata"] == {}


async def test_list_of_an_empty_thread_is_an_empty_list(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    page = await list_page(api, user, thread["id"])
    assert page == {"object": "list", "data": [], "next_cursor": None, "has_more": False}


async def test_list_default_limit_is_50(api: Api, user: str, create_thread: Factory) -> None:
    thread = await thread_with(create_thread, 55)
    page = await list_page(api, user, thread["id"])
    assert [m["seq"] for m in page["data"]] == list(range(1, 51))
    assert page["has_more"] is True and page["next_cursor"]


async def test_list_limit_bounds_are_accepted(api: Api, user: str, create_thread: Factory) -> None:
    thread = await thread_with(create_thread, 100)
    assert len((await list_page(api, user, thread["id"], limit=1))["data"]) == 1
    full = await list_page(api, user, thread["id"], limit=100)
    assert len(full["data"]) == 100
    assert full["has_more"] is False and full["next_cursor"] is None


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten"])
async def test_list_rejects_limit_out_of_range_with_422(
    api: Api, user: str, create_thread: Factory, limit: str
) -> None:
    thread = await create_thread()
    response = await api.request("GET", url(thread["id"]), user=user, params={"limit": limit})
    body = assert_problem(response, 422)
    assert any("limit" in e["loc"] for e in body["errors"]), body


async def test_list_default_order_is_ascending_by_seq(api: Api, user: str, create_thread: Factory) -> None:
    thread = await thread_with(create_thread, 5)
    page = await list_page(api, user, thread["id"])
    assert [m["seq"] for m in page["data"]] == [1, 2, 3, 4, 5]
    explicit = await list_page(api, user, thread["id"], order="asc")
    assert explicit["data"] == page["data"]


async def test_list_desc_order_starts_with_the_newest(api: Api, user: str, create_thread: Factory) -> None:
    thread = await thread_with(create_thread, 5)
    page = await list_page(api, user, thread["id"], order="desc")
    assert [m["seq"] for m in page["data"]] == [5, 4, 3, 2, 1]


async def test_list_rejects_an_unknown_order_with_422(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    response = await api.request("GET", url(thread["id"]), user=user, params={"order": "random"})
    assert_problem(response, 422)


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("limit", [1, 7, 23])
async def test_pagination_walks_every_message_once(
    api: Api, user: str, create_thread: Factory, order: str, limit: int
) -> None:
    thread = await thread_with(create_thread, 23)
    seqs, pages = await walk(api, user, thread["id"], order=order, limit=limit)
    expected = list(range(1, 24))
    assert seqs == (expected if order == "asc" else expected[::-1])
    assert pages == -(-23 // limit)


async def test_pagination_sees_messages_appended_between_pages(api: Api, user: str, create_thread: Factory) -> None:
    thread = await thread_with(create_thread, 4)
    first = await list_page(api, user, thread["id"], limit=3)
    response = await api.request("POST", url(thread["id"]), user=user, json={"content": "late"})
    assert response.status_code == 201
    second = await list_page(api, user, thread["id"], limit=3, cursor=first["next_cursor"])
    assert [m["seq"] for m in first["data"] + second["data"]] == [1, 2, 3, 4, 5]
    assert second["has_more"] is False


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!!",
        "%%%",
        "eyJub3Qi",  # truncated JSON
        _b64(b'{"seq": 3}'),  # JSON, but not the cursor's list
        _b64(b'["3"]'),  # the seq as a string
        _b64(b"[true]"),
        _b64(b"[1, 2]"),
        _b64(b"[-1]"),
        _b64(b"[99999999999999]"),
        _b64(b'["2026-01-01T00:00:00+00:00", "thr_x"]'),  # a thread-list cursor
    ],
)
async def test_list_rejects_a_garbage_cursor_with_422(api: Api, user: str, create_thread: Factory, cursor: str) -> None:
    thread = await thread_with(create_thread, 3)
    response = await api.request("GET", url(thread["id"]), user=user, params={"cursor": cursor})
    body = assert_problem(response, 422)
    assert ["query", "cursor"] in [e["loc"] for e in body["errors"]], body


async def test_list_of_another_users_thread_is_404(api: Api, user: str, create_thread: Factory) -> None:
    thread = await thread_with(create_thread, 3)
    response = await api.request("GET", url(thread["id"]), user=new_user())
    assert_problem(response, 404)


async def test_list_of_another_users_thread_with_a_cursor_is_404(api: Api, user: str, create_thread: Factory) -> None:
    thread = await thread_with(create_thread, 3)
    cursor = (await list_page(api, user, thread["id"], limit=1))["next_cursor"]
    response = await api.request("GET", url(thread["id"]), user=new_user(), params={"cursor": cursor})
    assert_problem(response, 404)


async def test_list_of_a_missing_thread_is_404(api: Api, user: str) -> None:
    response = await api.request("GET", url("thr_missing"), user=user)
    assert_problem(response, 404)


async def test_list_of_an_archived_thread_still_works(api: Api, user: str, create_thread: Factory) -> None:
    thread = await thread_with(create_thread, 2)
    await api.request("DELETE", f"/api/threads/{thread['id']}", user=user)
    page = await list_page(api, user, thread["id"])
    assert [m["seq"] for m in page["data"]] == [1, 2]


async def test_list_shows_only_the_threads_own_messages(api: Api, user: str, create_thread: Factory) -> None:
    one = await thread_with(create_thread, 3)
    other = await thread_with(create_thread, 2)
    page = await list_page(api, user, one["id"])
    assert {m["thread_id"] for m in page["data"]} == {one["id"]}
    assert len((await list_page(api, user, other["id"]))["data"]) == 2
