"""Events and Idempotency-Key responses stored before version 2 (migration 0006) are answered with the fields
version 2 added, at the values they had then (src/threadstore/legacy.py), never without them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import insert, update

from tests.conftest import Api, Factory
from tests.messages import branching as legacy_fields
from threadstore.db import event_body
from threadstore.db.tables import events, idempotency_keys
from threadstore.db.unit_of_work import Tx
from threadstore.events import repository as events_repo
from threadstore.idempotency import service as idempotency
from threadstore.messages.schemas import MessageCreate
from threadstore.threads.schemas import ThreadCreate


def v1_body(data: dict[str, Any]) -> bytes:
    """A body as version 1 wrote it (version 2 writes the same format, with more keys in the object)."""
    return event_body.encode(data)


V1_LACKS = ("parent_id", "depth", "sibling_index", "sibling_count", *legacy_fields.REPLY_FIELDS)


def v1_message(message: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in message.items() if key not in V1_LACKS}


async def delivered(api: Api, user: str) -> list[tuple[str, dict[str, Any]]]:
    async def read(tx: Tx) -> Any:
        return await events_repo.delivered(tx, 0, 2**62, 1000, 2**30, user)

    page = await api.database.read(read)
    return [(event.type, orjson.loads(event.json())) for event in page.events]


async def add_events(api: Api, rows: list[dict[str, Any]]) -> None:
    async with api.database.engine.begin() as conn:
        await conn.execute(insert(events), rows)


async def test_events_stored_before_version_2_carry_the_new_fields(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread(messages=[{"content": "one"}, {"content": "two"}, {"content": "three"}])
    listed = (await api.request("GET", f"/api/threads/{thread['id']}/messages", user=user)).json()["data"]
    second = listed[1]
    now = datetime.now(UTC)
    old_thread = {key: value for key, value in thread.items() if key != "current_message_id"}
    old_message = {key: value for key, value in v1_message(second).items() if key not in ("content", "seq")}
    await add_events(
        api,
        [
            {
                "user_id": user,
                "thread_id": thread["id"],
                "type": "message.created",
                "body": v1_body(old_message),
                "member": '"seq":2',  # version 1's append supplied the seq alone
                "content_of": second["id"],
                "created_at": now,
            },
            {
                "user_id": user,
                "thread_id": thread["id"],
                "type": "thread.updated",
                "body": event_body.raw(orjson.dumps(old_thread | {"message_count": 2}).decode()),
                "member": None,
                "content_of": None,
                "created_at": now,
            },
            {
                "user_id": user,
                "thread_id": thread["id"],
                "type": "thread.updated",
                "body": v1_body(old_thread | {"message_count": 0}),
                "member": None,
                "content_of": None,
                "created_at": now,
            },
        ],
    )
    found = await delivered(api, user)
    assert [kind for kind, _ in found][-3:] == ["message.created", "thread.updated", "thread.updated"]
    message, at_two, empty = (data for _, data in found[-3:])
    assert message == second  # depth, parent, index from its row; sibling_count 1, as on a line
    assert at_two["current_message_id"] == listed[1]["id"]
    assert empty["current_message_id"] is None
    # what version 2 writes is not touched
    assert found[0] == ("thread.created", thread)


async def test_a_replayed_response_stored_before_version_2_carries_the_new_fields(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread()
    path = f"/api/threads/{thread['id']}/messages"
    first = await api.request("POST", path, user=user, json={"content": "a"})
    second = await api.request("POST", path, user=user, json={"content": "b"}, headers={"Idempotency-Key": "old-1"})
    created = await api.request(
        "POST",
        "/api/threads",
        user=user,
        json={"messages": [{"content": "x"}, {"content": "y"}]},
        headers={"Idempotency-Key": "old-2"},
    )
    assert first.status_code == second.status_code == created.status_code == 201
    # As version 1 stored them: the same requests' fingerprints, bodies without the version 2 fields.
    key_1 = idempotency.parse_key("old-1", user, "POST", path, MessageCreate(content="b"))
    key_2 = idempotency.parse_key(
        "old-2",
        user,
        "POST",
        "/api/threads",
        ThreadCreate.model_validate({"messages": [{"content": "x"}, {"content": "y"}]}),
    )
    assert key_1 is not None and key_2 is not None
    old_thread = {key: value for key, value in created.json().items() if key != "current_message_id"}
    async with api.database.engine.begin() as conn:
        for key, body in ((key_1, v1_message(second.json())), (key_2, old_thread)):
            await conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.user_id == user, idempotency_keys.c.key == key.key)
                .values(response_body=orjson.dumps(body).decode(), fingerprint=key.fingerprint)
            )
    replay = await api.request("POST", path, user=user, json={"content": "b"}, headers={"Idempotency-Key": "old-1"})
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == second.json()
    assert replay.json()["parent_id"] == first.json()["id"]
    again = await api.request(
        "POST",
        "/api/threads",
        user=user,
        json={"messages": [{"content": "x"}, {"content": "y"}]},
        headers={"Idempotency-Key": "old-2"},
    )
    assert again.status_code == 201
    assert again.json() == created.json()


async def test_messages_stored_before_streamed_replies_are_completed_without_feedback(
    api: Api, user: str, create_thread: Factory
) -> None:
    """Migration 0007: a message event or replayed response written by version 2 before streamed replies has its
    tree fields but not status, finish_reason, model, usage, feedback — which every message then had as these."""
    thread = await create_thread()
    path = f"/api/threads/{thread['id']}/messages"
    sent = await api.request("POST", path, user=user, json={"content": "b"}, headers={"Idempotency-Key": "v20"})
    assert sent.status_code == 201
    message = sent.json()
    before_0007 = {key: value for key, value in message.items() if key not in legacy_fields.REPLY_FIELDS}
    stored = {key: value for key, value in before_0007.items() if key not in ("content", "seq", "parent_id", "depth")}
    await add_events(
        api,
        [
            {
                "user_id": user,
                "thread_id": thread["id"],
                "type": "message.created",
                "body": v1_body(stored),
                "member": f'"seq":{message["seq"]},"parent_id":null,"depth":1',
                "content_of": message["id"],
                "created_at": datetime.now(UTC),
            }
        ],
    )
    kind, data = (await delivered(api, user))[-1]
    assert (kind, data) == ("message.created", message)
    key = idempotency.parse_key("v20", user, "POST", path, MessageCreate(content="b"))
    assert key is not None
    async with api.database.engine.begin() as conn:
        await conn.execute(
            update(idempotency_keys)
            .where(idempotency_keys.c.user_id == user, idempotency_keys.c.key == key.key)
            .values(response_body=orjson.dumps(before_0007).decode())
        )
    replay = await api.request("POST", path, user=user, json={"content": "b"}, headers={"Idempotency-Key": "v20"})
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == message
