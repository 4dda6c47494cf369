"""Expired idempotency records are deleted by the background housekeeping, in bounded batches."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import Api
from tests.http.problems import key_count
from tests.idempotency.test_expiry import age_key
from threadstore import maintenance
from threadstore.idempotency import service as idempotency

TTL = 3600


async def _keyed_creates(api: Api, user: str, keys: list[str]) -> None:
    for key in keys:
        response = await api.request("POST", "/api/threads", user=user, json={}, headers={"Idempotency-Key": key})
        assert response.status_code == 201


async def test_a_pass_deletes_expired_records_and_keeps_live_ones(
    api: Api, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency, "PRUNE_BATCH", 2)  # several batches, each its own unit of work
    await _keyed_creates(api, user, ["a", "b", "c", "d", "e", "live"])
    for key in ["a", "b", "c", "d", "e"]:
        await age_key(api, user, key, TTL + 60)

    deleted = await maintenance.prune_once(api.database, TTL)

    assert deleted >= 5
    assert await key_count(api, user) == 1
    replay = await api.request("POST", "/api/threads", user=user, json={}, headers={"Idempotency-Key": "live"})
    assert replay.headers.get("idempotent-replayed") == "true"


class TestBackgroundTask:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"idempotency_ttl_seconds": TTL, "maintenance_interval_seconds": 0.05}

    async def test_the_running_service_prunes_by_itself(self, api: Api, user: str) -> None:
        await _keyed_creates(api, user, ["old"])
        await age_key(api, user, "old", TTL + 60)
        deadline = datetime.now(UTC) + timedelta(seconds=5)
        while await key_count(api, user) and datetime.now(UTC) < deadline:  # noqa: ASYNC110 (polls the DB)
            await asyncio.sleep(0.05)
        assert await key_count(api, user) == 0
