"""Shared assertions for the HTTP-level suites (messages, idempotency, http)."""

from __future__ import annotations

import re
from typing import Any

import httpx
from sqlalchemy import ColumnElement, func, select

from tests.conftest import Api
from threadstore.db.tables import idempotency_keys, messages, threads

RFC3339_MS_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
PROBLEM_FIELDS = {"type", "title", "status", "detail", "request_id"}


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem of `status` whose request_id is the X-Request-ID header."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].split(";")[0] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_FIELDS, body
    assert body["status"] == status
    assert isinstance(body["type"], str) and body["type"]
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    assert body["request_id"] == response.headers["x-request-id"]
    if status == 422:
        assert isinstance(body.get("errors"), list) and body["errors"], body
        for error in body["errors"]:
            assert set(error) == {"loc", "msg"}, error
            assert isinstance(error["loc"], list)
    if status == 409:  # API.md version 2: a conflict says which
        assert body.get("reason") in CONFLICT_REASONS, body
    return body


CONFLICT_REASONS = {"in-flight", "archived", "version", "offset", "state", "expired"}


async def count_rows(api: Api, *where: ColumnElement[bool], table: Any = threads) -> int:
    """Counts rows straight from the database, on a connection of its own."""
    async with api.database.engine.connect() as conn:
        stmt = select(func.count()).select_from(table)
        for condition in where:
            stmt = stmt.where(condition)
        value = (await conn.execute(stmt)).scalar_one()
    return int(value)


async def thread_count(api: Api, user: str) -> int:
    return await count_rows(api, threads.c.user_id == user)


async def message_count(api: Api, thread_id: str) -> int:
    return await count_rows(api, messages.c.thread_id == thread_id, table=messages)


async def key_count(api: Api, user: str) -> int:
    return await count_rows(api, idempotency_keys.c.user_id == user, table=idempotency_keys)
