"""Expired Idempotency-Keys free the key again. The stored row is aged with SQL instead of waiting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from tests.conftest import Api, Factory
from tests.http.problems import key_count, message_count, thread_count
from threadstore.db.tables import idempotency_keys

TTL = 60


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"idempotency_ttl_seconds": TTL}


async def age_key(api: Api, user: str, key: str, seconds: float) -> None:
    stamp = datetime.now(UTC) - timedelta(seconds=seconds)
    async with api.database.engine.begin() as conn:
        result = await conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.user_id == user, idempotency_keys.c.key == key)
            .values(created_at=stamp)
        )
        assert result.rowcount == 1


async def test_a_key_within_its_ttl_still_replays(api: Api, user: str) -> None:
    headers = {"Idempotency-Key": "young"}
    first = await api.request("POST", "/api/threads", user=user, json={"title": "a"}, headers=headers)
    await age_key(api, user, "young", TTL - 10)
    second = await api.request("POST", "/api/threads", user=user, json={"title": "a"}, headers=headers)
    assert second.json()["id"] == first.json()["id"]
    assert await thread_count(api, user) == 1


async def test_an_expired_key_creates_a_new_thread(api: Api, user: str) -> None:
    headers = {"Idempotency-Key": "old"}
    first = await api.request("POST", "/api/threads", user=user, json={"title": "a"}, headers=headers)
    await age_key(api, user, "old", TTL + 5)
    second = await api.request("POST", "/api/threads", user=user, json={"title": "a"}, headers=headers)
    assert second.status_code == 201
    assert second.json()["id"] != first.json()["id"]
    assert await thread_count(api, user) == 2
    assert await key_count(api, user) == 1

    third = await api.request("POST", "/api/threads", user=user, json={"title": "a"}, headers=headers)
    assert third.json()["id"] == second.json()["id"]  # the new response is the one kept now


async def test_an_expired_key_appends_a_new_message(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    url = f"/api/threads/{thread['id']}/messages"
    headers = {"Idempotency-Key": "old-append"}
    first = await api.request("POST", url, user=user, json={"content": "hi"}, headers=headers)
    await age_key(api, user, "old-append", TTL + 5)
    second = await api.request("POST", url, user=user, json={"content": "hi"}, headers=headers)
    assert second.status_code == 201
    assert (first.json()["seq"], second.json()["seq"]) == (1, 2)
    assert await message_count(api, thread["id"]) == 2


async def test_an_expired_key_may_be_reused_with_another_body(api: Api, user: str) -> None:
    headers = {"Idempotency-Key": "old-other"}
    await api.request("POST", "/api/threads", user=user, json={"title": "a"}, headers=headers)
    await age_key(api, user, "old-other", TTL + 5)
    second = await api.request("POST", "/api/threads", user=user, json={"title": "b"}, headers=headers)
    assert second.status_code == 201 and second.json()["title"] == "b"
