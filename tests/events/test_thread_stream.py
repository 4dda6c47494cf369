"""`GET /api/events?thread_id=…` (API.md, version 2): one thread's events only — the catch-up reads them by
thread in SQL and the live fan-out never hands a stream another thread's event; ids stay the global positions,
so Last-Event-ID works across both kinds of streams; a thread that is not the caller's is 404; a stream whose
thread is deleted sends `thread.deleted` and ends."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text

from tests.conftest import new_user
from tests.harness.client import Api, EventStream, Frame
from tests.http.problems import assert_problem
from threadstore.events import repository, router
from threadstore.events import service as events
from threadstore.events.hub import Subscription
from threadstore.events.publisher import Publisher

pytestmark = pytest.mark.through_pgbouncer


async def _reply(api: Api, user: str, thread_id: str, *deltas: str) -> None:
    """An in_progress reply grown by `deltas`: one event each, as a streamed answer writes them."""
    response = await api.request(
        "POST",
        f"/api/threads/{thread_id}/messages",
        user=user,
        json={"role": "assistant", "content": "", "status": "in_progress"},
    )
    assert response.status_code == 201, response.text
    offset = 0
    for delta in deltas:
        url = f"/api/threads/{thread_id}/messages/{response.json()['id']}/deltas"
        answer = await api.request("POST", url, user=user, json={"offset": offset, "text": delta})
        assert answer.status_code == 200, answer.text
        offset += len(delta)


def _about(frame: Frame) -> str:
    data: dict[str, Any] = frame.data
    return str(data.get("thread_id", data.get("id")))


async def _stream_answer(api: Api, user: str, thread_id: str, **headers: str) -> httpx.Response:
    """The answer to opening a thread's stream that must fail (a 200 would never end: read its head only)."""
    async with (
        httpx.AsyncClient(base_url=api.base_url, timeout=httpx.Timeout(30.0, read=5.0)) as client,
        client.stream(
            "GET", "/api/events", params={"thread_id": thread_id}, headers={**api.auth(user), **headers}
        ) as response,
    ):
        assert response.status_code != 200, "the stream opened"
        await response.aread()
        return response


async def test_only_the_followed_threads_events_arrive(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    user, other = new_user(), new_user()
    followed = await api.create_thread(user, title="followed")
    beside = await api.create_thread(user, title="beside")
    elsewhere = await api.create_thread(other, title="someone else's")
    offered: list[tuple[str | None, str]] = []
    offer = Subscription.offer

    def recorded(subscription: Subscription, event: repository.PublishedEvent) -> None:
        offered.append((getattr(subscription, "thread_id", None), event.thread_id))
        offer(subscription, event)

    monkeypatch.setattr(Subscription, "offer", recorded)
    async with api.stream(user, thread_id=followed["id"]) as stream, api.stream(user) as everything:
        await _reply(api, user, beside["id"], "a", "b", "c")
        await _reply(api, other, elsewhere["id"], "x", "y")
        mine = await api.append(user, followed["id"], "in the followed thread")
        await _reply(api, user, beside["id"], "d")
        await _reply(api, user, followed["id"], "e", "f")
        received = await stream.events(4)
        assert await stream.until_keep_alive() == []  # nothing else was due
        # The user's whole stream saw the other thread's events meanwhile: they were delivered, not lost.
        assert {_about(f) for f in await everything.events(10)} == {beside["id"], followed["id"]}

    assert {_about(f) for f in received} == {followed["id"]}
    assert received[0].data == mine
    assert [f.event for f in received] == ["message.created", "message.created", "message.delta", "message.delta"]
    # The fan-out dropped the other threads' events before the stream's queue (the user's stream got them).
    assert {thread for follows, thread in offered if follows == followed["id"]} == {followed["id"]}
    assert {thread for follows, thread in offered if follows is None} == {beside["id"], followed["id"]}


async def test_resuming_gives_exactly_the_threads_missed_events_from_either_kind_of_stream(api: Api) -> None:
    user, other = new_user(), new_user()
    followed = await api.create_thread(user)
    beside = await api.create_thread(user)
    elsewhere = await api.create_thread(other)
    async with api.stream(user, thread_id=followed["id"]) as stream, api.stream(user) as everything:
        await api.append(user, followed["id"], "seen")
        seen = await stream.event()
        assert seen is not None
        await api.append(user, beside["id"], "other thread, later")
        from_everything = (await everything.events(2))[-1]
    missed = []
    for n in range(3):  # while no stream is open, among other threads' writes
        await api.append(user, beside["id"], f"beside {n}")
        await api.append(other, elsewhere["id"], f"elsewhere {n}")
        missed.append(await api.append(user, followed["id"], f"missed {n}"))

    async with api.stream(user, last_event_id=seen.id, thread_id=followed["id"]) as resumed:
        frames = await resumed.until_keep_alive()
    assert [f.data for f in frames] == missed
    ids = [f.id or 0 for f in frames]
    assert seen.id is not None and ids == sorted(set(ids)) and min(ids) > seen.id
    assert max(ids) - seen.id > len(ids)  # global positions: a thread's have gaps

    # An id of the user's whole stream (another thread's event) resumes a thread's stream too, and back.
    assert from_everything.id is not None and from_everything.data["thread_id"] == beside["id"]
    async with api.stream(user, last_event_id=from_everything.id, thread_id=followed["id"]) as resumed:
        assert [f.data for f in await resumed.until_keep_alive()] == missed
    async with api.stream(user, last_event_id=frames[0].id) as whole:
        assert [_about(f) for f in await whole.until_keep_alive()] == [
            beside["id"],
            followed["id"],
            beside["id"],
            followed["id"],
        ]


@pytest.mark.parametrize("settings_overrides", [{"max_streams_per_user": 1}])
async def test_a_thread_that_is_not_the_callers_is_404_as_any_missing_thread(api: Api) -> None:
    user, other = new_user(), new_user()
    others = await api.create_thread(other)
    deleted = await api.create_thread(user)
    gone = await api.request("DELETE", f"/api/threads/{deleted['id']}", user=user, params={"permanent": "true"})
    assert gone.status_code == 204
    archived = await api.create_thread(user)
    assert (await api.request("DELETE", f"/api/threads/{archived['id']}", user=user)).status_code == 200
    expected = assert_problem(await api.request("GET", "/api/threads/thr_unknown", user=user), 404)

    async with api.stream(user) as open_stream:  # the user's one stream under the cap
        for thread_id in ("thr_" + "x" * 22, others["id"], deleted["id"], "", "nul\x00"):
            for headers in ({}, {"Last-Event-ID": "0"}):
                body = assert_problem(await _stream_answer(api, user, thread_id, **headers), 404)
                assert (body["title"], body["detail"], body["type"]) == (
                    expected["title"],
                    expected["detail"],
                    expected["type"],
                )
        # A 404 registered nothing, so it evicted nothing.
        assert api.hub.subscriptions == 1
        thread = await api.create_thread(user)
        first = await open_stream.event()
        assert first is not None and first.data == thread
    # An archived thread is the caller's: it can be followed.
    async with api.stream(user, thread_id=archived["id"]) as stream:
        assert await stream.until_keep_alive() == []


async def test_a_deletion_while_the_stream_is_open_sends_thread_deleted_and_ends_it(api: Api) -> None:
    user = new_user()
    followed = await api.create_thread(user)
    beside = await api.create_thread(user)
    async with api.stream(user, thread_id=followed["id"]) as stream:
        message = await api.append(user, followed["id"])
        assert (await stream.event()) is not None
        deleted = await api.request("DELETE", f"/api/threads/{followed['id']}", user=user, params={"permanent": "1"})
        assert deleted.status_code == 204
        await api.append(user, beside["id"])
        frames = await _until_end(stream)
    assert [(f.event, f.data) for f in frames if f.event] == [("thread.deleted", {"id": followed["id"]})]
    assert api.hub.subscriptions == 0
    # A client that reconnects anyway (a browser's EventSource does) gets 404, which stops it.
    assert_problem(await _stream_answer(api, user, followed["id"], **{"Last-Event-ID": str(frames[-1].id)}), 404)
    assert message["thread_id"] == followed["id"]


async def test_a_deletion_that_commits_while_the_stream_opens_is_404_not_a_silent_stream(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread was there at the first look, and its deletion committed before the start was fixed, so its
    `thread.deleted` lies at or below the start: the stream must not open and wait for ever."""
    user = new_user()
    thread = await api.create_thread(user)
    start_after = events.start_after

    async def deleted_meanwhile(database: Any, publisher: Publisher, resume: int | None) -> int:
        gone = await api.request("DELETE", f"/api/threads/{thread['id']}", user=user, params={"permanent": "1"})
        assert gone.status_code == 204
        return await start_after(database, publisher, resume)

    monkeypatch.setattr(router, "start_after", deleted_meanwhile)
    assert_problem(await _stream_answer(api, user, thread["id"]), 404)
    assert api.hub.subscriptions == 0


async def test_the_catch_up_walks_the_threads_index(api: Api) -> None:
    """The catch-up filters by thread in SQL, along ix_events_thread_id (thread_id, id): a resumed thread
    stream reads its thread's rows, not every event of its user."""
    user = new_user()
    thread = await api.create_thread(user)
    for _ in range(3):
        await _reply(api, user, (await api.create_thread(user))["id"], *"abcdefgh")
    statement = repository._DELIVERED[api.database.dialect, repository.THREAD]
    compiled = statement.compile(dialect=api.database.engine.dialect)
    values = {
        "after": 0,
        "through": 2**62,
        "limit": 500,
        "max_bytes": 2**20,
        "user_id": user,
        "thread_id": thread["id"],
    }
    # Both drivers take positional parameters, in the order the compiled statement names them.
    every = compiled.construct_params(values)
    bound = tuple(every[name] for name in compiled.positiontup or ())
    sql = str(compiled)
    async with api.database.engine.connect() as conn:
        if api.database.dialect == "postgresql":
            await conn.execute(text("ANALYZE events"))
            await conn.execute(text("SET LOCAL enable_seqscan = off"))  # a test's table is small enough to scan
            plan = (await conn.exec_driver_sql("EXPLAIN " + sql, bound)).all()
        else:
            plan = (await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, bound)).all()
        await conn.rollback()
    assert "ix_events_thread_id" in " ".join(str(row) for row in plan), plan


async def _until_end(stream: EventStream) -> list[Frame]:
    return await stream.until_end(within=10)
