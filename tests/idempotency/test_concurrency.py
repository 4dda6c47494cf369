"""Concurrent repeats of one Idempotency-Key create exactly one object."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text

from tests.conftest import Api, Factory
from tests.http.problems import assert_problem, key_count, message_count, thread_count
from threadstore.idempotency import service as idempotency
from threadstore.idempotency.schemas import StoredResponse
from threadstore.threads import service as threads_service
from threadstore.threads.schemas import ThreadCreate

pytestmark = pytest.mark.through_pgbouncer

CONCURRENT = 20


def check_one_winner(responses: list[httpx.Response]) -> str:
    """Every response is 201 with one id, or 409 (in flight); returns the id."""
    created = [r for r in responses if r.status_code == 201]
    assert created, [r.text for r in responses]
    for response in responses:
        if response.status_code != 201:
            assert assert_problem(response, 409)["reason"] == "in-flight"
    ids = {r.json()["id"] for r in created}
    assert len(ids) == 1, ids
    return ids.pop()


async def test_concurrent_thread_creates_with_one_key_create_one_thread(api: Api, user: str) -> None:
    body = {"title": "once", "messages": [{"content": "a"}, {"content": "b"}]}
    headers = {"Idempotency-Key": "burst-create"}
    responses = await asyncio.gather(
        *(api.request("POST", "/api/threads", user=user, json=body, headers=headers) for _ in range(CONCURRENT))
    )
    thread_id = check_one_winner(list(responses))
    assert await thread_count(api, user) == 1
    assert await message_count(api, thread_id) == 2
    assert await key_count(api, user) == 1

    later = await api.request("POST", "/api/threads", user=user, json=body, headers=headers)
    assert later.status_code == 201 and later.json()["id"] == thread_id


async def test_concurrent_appends_with_one_key_create_one_message(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    url = f"/api/threads/{thread['id']}/messages"
    headers = {"Idempotency-Key": "burst-append"}
    responses = await asyncio.gather(
        *(api.request("POST", url, user=user, json={"content": "once"}, headers=headers) for _ in range(CONCURRENT))
    )
    check_one_winner(list(responses))
    after = (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()
    assert after["message_count"] == 1
    assert after["version"] == 2
    assert await message_count(api, thread["id"]) == 1


async def test_concurrent_distinct_keys_each_create_their_own(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    url = f"/api/threads/{thread['id']}/messages"
    responses = await asyncio.gather(
        *(
            api.request("POST", url, user=user, json={"content": "x"}, headers={"Idempotency-Key": f"k{i}"})
            for i in range(10)
        )
    )
    assert [r.status_code for r in responses] == [201] * 10
    assert sorted(r.json()["seq"] for r in responses) == list(range(1, 11))
    assert await key_count(api, user) == 10


class TestUnderRepeatableRead:
    """Under REPEATABLE READ a request's snapshot can predate the commit of a twin with the same key: it finds
    no record, its insert of the key hits the twin's, and the unit of work must be re-run into a replay."""

    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"isolation_level": "REPEATABLE READ"}

    @pytest.mark.postgres_only
    async def test_a_twin_committing_after_our_snapshot_is_replayed_not_500(self, api: Api, user: str) -> None:
        twin_committed = asyncio.Event()
        attempts = 0
        body = ThreadCreate(title="x")
        keyed = idempotency.parse_key("rr-key", user, "POST", "/api/threads", body)
        assert keyed is not None

        async def late_request(tx: Any) -> StoredResponse:
            nonlocal attempts
            attempts += 1
            await tx.conn.execute(text("SELECT 1"))  # the snapshot is taken here, before the twin commits
            await twin_committed.wait()

            def create() -> Any:
                return threads_service.create(tx, user, body, api.app.state.limits)

            return await idempotency.run_once(tx, keyed, 3600, create, lambda t: StoredResponse(201, orjson.dumps(t)))

        late = asyncio.create_task(api.database.write(late_request))
        await asyncio.sleep(0.1)
        twin = await api.request(
            "POST", "/api/threads", user=user, json={"title": "x"}, headers={"Idempotency-Key": "rr-key"}
        )
        assert twin.status_code == 201
        twin_committed.set()

        replayed = await late
        assert replayed.replayed and orjson.loads(replayed.body)["id"] == twin.json()["id"]
        assert attempts == 2
        assert await thread_count(api, user) == 1
