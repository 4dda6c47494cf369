"""Assertions and small shortcuts shared by the thread endpoint tests."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select, update

from tests.conftest import Api
from tests.http.problems import assert_problem
from threadstore.db import event_body
from threadstore.db.tables import events, messages, threads

# RFC 3339, UTC, millisecond precision (or finer), `Z` suffix.
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3,6}Z$")

THREAD_FIELDS = {
    "id",
    "object",
    "title",
    "metadata",
    "status",
    "created_at",
    "updated_at",
    "archived_at",
    "message_count",
    "last_message_at",
    "version",
    "current_message_id",  # version 2
}


def parse_time(value: str) -> datetime:
    assert TIMESTAMP.match(value), f"not an RFC 3339 UTC timestamp with milliseconds: {value!r}"
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def assert_validation_error(response: httpx.Response, *loc_parts: str | int) -> dict[str, Any]:
    """A 422 problem with an error whose `loc` contains every one of `loc_parts`."""
    body = assert_problem(response, 422)
    locs = [error["loc"] for error in body["errors"]]
    assert any(all(part in loc for part in loc_parts) for loc in locs), (loc_parts, locs)
    return body


def assert_thread_response(response: httpx.Response, status: int = 200) -> dict[str, Any]:
    """A thread body with every field, and an ETag naming its version."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/json"
    thread: dict[str, Any] = response.json()
    assert set(thread) == THREAD_FIELDS, thread
    assert thread["object"] == "thread"
    assert response.headers["etag"] == f'"{thread["version"]}"'
    return thread


def same_problem(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Two problems that differ in nothing but their request ids."""
    return {k: v for k, v in first.items() if k != "request_id"} == {
        k: v for k, v in second.items() if k != "request_id"
    }


async def get_thread(api: Api, user: str, thread_id: str) -> dict[str, Any]:
    response = await api.request("GET", f"/api/threads/{thread_id}", user=user)
    return assert_thread_response(response)


async def list_page(api: Api, user: str, **params: Any) -> dict[str, Any]:
    response = await api.request("GET", "/api/threads", user=user, params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    assert set(page) == {"object", "data", "next_cursor", "has_more"}
    assert page["object"] == "list"
    return page


async def listed_ids(api: Api, user: str, **params: Any) -> list[str]:
    page = await list_page(api, user, limit=100, **params)
    assert page["has_more"] is False
    return [thread["id"] for thread in page["data"]]


async def append(api: Api, user: str, thread_id: str, content: str = "hello", **body: Any) -> httpx.Response:
    return await api.request("POST", f"/api/threads/{thread_id}/messages", user=user, json={"content": content, **body})


async def set_updated_at(api: Api, thread_ids: list[str], when: datetime) -> None:
    """Rewrites `updated_at` behind the API's back, to make ties the clock would not produce."""
    async with api.database.engine.begin() as conn:
        await conn.execute(update(threads).where(threads.c.id.in_(thread_ids)).values(updated_at=when))


async def stored_message_count(api: Api, thread_id: str) -> int:
    async with api.database.engine.connect() as conn:
        rows = (await conn.execute(select(messages.c.id).where(messages.c.thread_id == thread_id))).all()
    return len(rows)


async def stored_thread_count(api: Api, user: str) -> int:
    async with api.database.engine.connect() as conn:
        rows = (await conn.execute(select(threads.c.id).where(threads.c.user_id == user))).all()
    return len(rows)


async def recorded_events(api: Api, user: str) -> list[tuple[str, dict[str, Any]]]:
    """The user's events in the outbox, oldest first, as (type, data) — the data as a stream delivers it."""
    stmt = (
        select(
            events.c.type, events.c.body, events.c.member, messages.c.content, events.c.thread_id, events.c.created_at
        )
        .select_from(events.outerjoin(messages, messages.c.id == events.c.content_of))
        .where(events.c.user_id == user)
        .order_by(events.c.id)
    )
    async with api.database.engine.connect() as conn:
        rows = (await conn.execute(stmt)).all()
    return [
        (row.type, json.loads(event_body.decode(row.body, row.member, row.content, row.thread_id, row.created_at)))
        for row in rows
    ]
