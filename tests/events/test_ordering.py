"""Ordering under concurrency: every committed event reaches its user's stream exactly once, in strictly
increasing id order, and resuming from any id yields exactly the rest — including the classic trap of an
insert-time id that commits after a later one."""

from __future__ import annotations

import asyncio
import itertools
import random
from datetime import UTC, datetime

import asyncpg
import orjson
import pytest
from sqlalchemy import insert

from tests.conftest import new_user
from tests.harness.client import Api
from threadstore.db import event_body
from threadstore.db.tables import events

pytestmark = pytest.mark.through_pgbouncer

USERS = 4
THREADS_PER_USER = 5
EVENTS_PER_USER = 25  # 1,000 in all


async def test_a_thousand_concurrent_events_arrive_once_in_order_and_resume_exactly(api: Api) -> None:
    users = [new_user() for _ in range(USERS)]
    streams = [api.stream(user) for user in users]
    opened = [await s.__aenter__() for s in streams]
    try:
        threads = {
            user: await asyncio.gather(*(api.create_thread(user) for _ in range(THREADS_PER_USER))) for user in users
        }
        # Concurrent appends, to the same threads and across users, from 32 writers.
        work = [
            (user, threads[user][n % THREADS_PER_USER]["id"])
            for user in users
            for n in range(EVENTS_PER_USER - THREADS_PER_USER)
        ]
        random.shuffle(work)
        queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        for item in work:
            queue.put_nowait(item)
        written: dict[str, list[dict[str, object]]] = {user: [] for user in users}

        async def writer() -> None:
            while not queue.empty():
                user, thread_id = queue.get_nowait()
                written[user].append(await api.append(user, thread_id))

        await asyncio.gather(*(writer() for _ in range(32)))
        received = {user: await stream.events(EVENTS_PER_USER) for user, stream in zip(users, opened, strict=True)}
    finally:
        for s in reversed(streams):
            await s.__aexit__(None, None, None)

    for user in users:
        frames = received[user]
        ids = [f.id for f in frames]
        assert all(a < b for a, b in itertools.pairwise(ids)), "ids must grow strictly"  # type: ignore[operator]
        created = [f.data for f in frames if f.event == "thread.created"]
        appended = [f.data for f in frames if f.event == "message.created"]
        assert sorted(t["id"] for t in created) == sorted(t["id"] for t in threads[user])
        assert sorted(m["id"] for m in appended) == sorted(m["id"] for m in written[user])  # type: ignore[index]
        # Per thread, messages arrive in seq order: commit order is delivery order.
        for thread in threads[user]:
            seqs = [m["seq"] for m in appended if m["thread_id"] == thread["id"]]
            assert seqs == sorted(seqs)

    user = users[0]
    frames = received[user]
    cuts = {0, frames[0].id, frames[-1].id, *(frames[i].id for i in random.sample(range(len(frames)), 12))}
    for cut in sorted(cuts):  # type: ignore[type-var]
        expected = [f.id for f in frames if f.id > cut]  # type: ignore[operator]
        async with api.stream(user, last_event_id=cut) as resumed:
            assert [f.id for f in await resumed.until_keep_alive()] == expected


@pytest.mark.postgres_only
async def test_an_earlier_id_that_commits_later_is_not_skipped(api: Api) -> None:
    """Transaction A inserts an event (the smaller id) and stays open; B inserts one (the larger id) and
    commits. The stream gets B's event first, A's when A commits — and resuming after B's still has A's."""
    user = new_user()
    assert api.backend.dsn is not None
    holder = await asyncpg.connect(api.backend.dsn)
    try:
        async with api.stream(user) as stream:
            transaction = holder.transaction()
            await transaction.start()
            earlier_id = await holder.fetchval(
                "INSERT INTO events (user_id, thread_id, type, body, created_at)"
                " VALUES ($1, 'held', 'thread.deleted', $2, now()) RETURNING id",
                user,
                event_body.raw('{"id": "held"}'),
            )
            later = await api.create_thread(user)  # its event gets a larger id and commits first
            first = await stream.event()
            assert first is not None and first.data == later  # the held event is not visible yet
            await transaction.commit()
            second = await stream.event()
            assert second is not None and second.data == {"id": "held"}
            assert second.id > first.id  # type: ignore[operator]
        async with api.stream(user, last_event_id=first.id) as resumed:
            assert [f.data for f in await resumed.until_keep_alive()] == [{"id": "held"}]
        assert earlier_id < first.id  # it really was the trap: insert order differs from commit order
    finally:
        await holder.close()


async def test_events_an_instance_committed_but_never_published_are_swept_up(api: Api) -> None:
    """As if an instance died between its COMMIT and its publisher run: nobody wakes the publisher."""
    user = new_user()
    async with api.stream(user) as stream:
        row = {
            "user_id": user,
            "thread_id": "orphan",
            "type": "thread.deleted",
            "body": event_body.raw(orjson.dumps({"id": "orphan"}).decode()),
        }
        async with api.database.engine.begin() as conn:
            await conn.execute(insert(events).values(**row, created_at=datetime.now(UTC)))
        frame = await stream.event()
    assert frame is not None and frame.data == {"id": "orphan"}


@pytest.mark.postgres_only
@pytest.mark.parametrize("settings_overrides", [{"isolation_level": "REPEATABLE READ"}])
async def test_the_publisher_is_correct_at_repeatable_read_too(api: Api) -> None:
    """The publisher forces READ COMMITTED for its own unit: its snapshot must follow its lock."""
    user = new_user()
    async with api.stream(user) as stream:
        created = await asyncio.gather(*(api.create_thread(user) for _ in range(20)))
        frames = await stream.events(20)
    assert sorted(f.data["id"] for f in frames) == sorted(t["id"] for t in created)
