"""A delta whose answer is lost after it committed — the connection to the database cut after COMMIT (or, on
PostgreSQL, after the one statement that is the delta) — answers 5xx, since the service cannot know; the
generator retries the same delta and gets the answer of a first time, and the text is stored once. Through the
real driver path (tests/safety/faults.py, flavour ack-lost), at each isolation level. Not through PgBouncer:
there the client's connection to the pooler outlives the server connection the injector cuts.

The same guarantee under concurrency, with the client's own connection cut, is the race family
`lost-delta-answers` (scripts/torture/reply_races.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from sqlalchemy import text

from tests.conftest import Api, Factory
from tests.safety.faults import ACK_LOST, Injector, decisive_operation
from threadstore.db import event_body


@pytest.fixture(params=["READ COMMITTED", "SERIALIZABLE"])
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"isolation_level": request.param}


async def _delta_texts(api: Api, message_id: str) -> list[tuple[int, str]]:
    """The message.delta events recorded for the message, in order."""
    async with api.database.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT body FROM events WHERE type = 'message.delta' AND message_id = :m ORDER BY id"),
            {"m": message_id},
        )
        bodies = [orjson.loads(event_body.stored(bytes(row[0]))) for row in rows]
    return [(body["offset"], body["text"]) for body in bodies]


async def test_a_delta_whose_answer_was_lost_after_commit_is_retried_as_a_no_op(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread_id = (await create_thread())["id"]
    body = {"role": "assistant", "content": "", "status": "in_progress"}
    started = await api.request("POST", f"/api/threads/{thread_id}/messages", user=user, json=body)
    assert started.status_code == 201, started.text
    message_id = started.json()["id"]
    url = f"/api/threads/{thread_id}/messages/{message_id}"

    async def delta(offset: int, piece: str) -> Any:
        return await api.request("POST", f"{url}/deltas", user=user, json={"offset": offset, "text": piece})

    def answer(offset: int, piece: str) -> dict[str, Any]:
        return {"object": "message.delta", "message_id": message_id, "offset": offset, "length": offset + len(piece)}

    async with Injector(api.database.engine, api.backend) as injector:
        with injector.scope():
            first = await delta(0, "Hello")
        assert first.status_code == 200, first.text
        commits_at = decisive_operation(injector.ops, api.backend)
        assert commits_at, injector.ops

        # Lost, then retried while the reply grows.
        with injector.scope(commits_at, ACK_LOST):
            lost = await delta(5, ", world")
        assert injector.fired is not None, injector.ops
        assert lost.status_code == 503, lost.text
        retried = await delta(5, ", world")
        assert (retried.status_code, retried.json()) == (200, answer(5, ", world"))

        # Lost, then retried after the reply was closed: still the first time's answer, and nothing changes.
        with injector.scope(commits_at, ACK_LOST):
            lost = await delta(12, "!")
        assert lost.status_code == 503, lost.text
    closed = await api.request("PATCH", url, user=user, json={"status": "completed", "finish_reason": "stop"})
    assert closed.status_code == 200, closed.text
    assert closed.json()["content"] == "Hello, world!"
    retried = await delta(12, "!")
    assert (retried.status_code, retried.json()) == (200, answer(12, "!"))

    stored = await api.request("GET", url, user=user)
    assert stored.json()["content"] == "Hello, world!"
    assert await _delta_texts(api, message_id) == [(0, "Hello"), (5, ", world"), (12, "!")]
