"""An in_progress reply whose generator went silent is ended by the server (THREADSTORE_STALE_MESSAGE_SECONDS)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.conftest import Api, Factory
from tests.messages.test_replies import delta, message, patch, start_reply
from tests.threads.helpers import recorded_events

STALE_SECONDS = 1.0


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"stale_message_seconds": STALE_SECONDS}


async def until_ended(api: Api, user: str, thread_id: str, message_id: str, within: float) -> dict[str, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        found = await message(api, user, thread_id, message_id)
        if found["status"] != "in_progress":
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"still in_progress after {within} s")


async def test_a_silent_reply_ends_incomplete_with_its_text(api: Api, user: str, create_thread: Factory) -> None:
    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid, "partial")
    await delta(api, user, tid, reply["id"], 7, " answer")
    started = time.monotonic()
    ended = await until_ended(api, user, tid, reply["id"], within=STALE_SECONDS + 10)
    assert time.monotonic() - started >= STALE_SECONDS * 0.9
    assert (ended["status"], ended["finish_reason"], ended["content"]) == ("incomplete", "timeout", "partial answer")
    updated = [data for kind, data in await recorded_events(api, user) if kind == "message.updated"]
    assert updated == [ended]
    # Ended: a late delta is refused, and its retry of stored text still answers as the first time.
    assert (await delta(api, user, tid, reply["id"], 14, "!")).status_code == 409
    assert (await delta(api, user, tid, reply["id"], 7, " answer")).status_code == 200


async def test_activity_keeps_a_reply_open_and_archived_threads_are_swept_too(
    api: Api, user: str, create_thread: Factory
) -> None:
    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid)
    offset = 0
    for _ in range(8):  # 2.4 s of deltas, each well within the stale time of the one before
        offset = (await delta(api, user, tid, reply["id"], offset, "x")).json()["length"]
        await asyncio.sleep(0.3)
    assert (await message(api, user, tid, reply["id"]))["status"] == "in_progress"
    await patch(api, user, tid, reply["id"], metadata={"still": "going"})  # a PATCH is activity too
    assert (await api.request("DELETE", f"/api/threads/{tid}", user=user)).status_code == 200
    ended = await until_ended(api, user, tid, reply["id"], within=STALE_SECONDS + 10)
    assert (ended["status"], ended["content"]) == ("incomplete", "x" * 8)
