"""The transaction owner re-runs a whole unit of work on a deadlock (40P01) or a serialization failure
(40001), through the real `Database.write` on real PostgreSQL, and runs its after-commit hooks once.

The conflicts are made certain, not likely: the units meet on asyncio events at the exact point where the
conflict must arise, so every run of these tests has exactly one loser and one re-run.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, text

from tests.conftest import Api, Factory
from threadstore.db.failures import sqlstate
from threadstore.db.unit_of_work import Database, Tx
from threadstore.errors import ServiceUnavailable

pytestmark = pytest.mark.postgres_only


def retries() -> float:
    return REGISTRY.get_sample_value("threadstore_db_transaction_retries_total") or 0.0


@pytest.fixture
def sqlstates(api: Api) -> Iterator[list[str]]:
    """SQLSTATEs of the errors the driver raised in this test (read from SQLAlchemy's error hook)."""
    seen: list[str] = []

    def record(context: Any) -> None:
        code = sqlstate(context.original_exception)
        if code:
            seen.append(code)

    engine = api.database.engine.sync_engine
    event.listen(engine, "handle_error", record)
    yield seen
    event.remove(engine, "handle_error", record)


def woken(database: Database) -> list[str]:
    """Records each wake of event delivery by `database` (after a commit of a unit that recorded events)."""
    wakes: list[str] = []
    database.on_events_committed = lambda: wakes.append("woken")
    return wakes


async def lock(tx: Tx, thread_id: str) -> None:
    await tx.conn.execute(text("SELECT id FROM threads WHERE id = :id FOR UPDATE"), {"id": thread_id})


async def version_of(api: Api, thread_id: str) -> int:
    async with api.database.engine.connect() as conn:
        value = (await conn.execute(text("SELECT version FROM threads WHERE id = :id"), {"id": thread_id})).scalar()
    return int(value)


async def test_a_deadlock_is_rerun_whole_and_hooks_run_once(
    api: Api, create_thread: Factory, sqlstates: list[str]
) -> None:
    a, b = (await create_thread())["id"], (await create_thread())["id"]
    holds = {"one": asyncio.Event(), "two": asyncio.Event()}
    attempts: Counter[str] = Counter()
    wakes = woken(api.database)
    before = retries()

    def unit(name: str, first: str, second: str, other: str) -> Any:
        async def work(tx: Tx) -> None:
            attempts[name] += 1
            tx.wrote_events = True
            await lock(tx, first)
            holds[name].set()
            await holds[other].wait()  # both hold one row and want the other's: a certain deadlock
            await lock(tx, second)
            await tx.conn.execute(
                text("UPDATE threads SET version = version + 1 WHERE id IN (:a, :b)"), {"a": a, "b": b}
            )

        return work

    await asyncio.wait_for(
        asyncio.gather(
            api.database.write(unit("one", a, b, "two")),
            api.database.write(unit("two", b, a, "one")),
        ),
        timeout=30,
    )
    assert "40P01" in sqlstates
    assert sorted(attempts.values()) == [1, 2], attempts  # the victim ran twice, the survivor once
    assert wakes == ["woken"] * 2, wakes  # once per committed unit, never for the rolled-back attempt
    assert retries() - before == 1
    # Each unit's update applied exactly once: nothing of the rolled-back attempt remains.
    assert await version_of(api, a) == 3 and await version_of(api, b) == 3


class TestSerializable:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"isolation_level": "SERIALIZABLE"}

    async def test_a_serialization_failure_is_rerun_whole_and_hooks_run_once(
        self, api: Api, create_thread: Factory, sqlstates: list[str]
    ) -> None:
        a = (await create_thread())["id"]
        snapshot_taken, other_committed = asyncio.Event(), asyncio.Event()
        attempts: Counter[str] = Counter()
        wakes = woken(api.database)
        before = retries()

        async def late(tx: Tx) -> None:
            attempts["late"] += 1
            tx.wrote_events = True
            await tx.conn.execute(text("SELECT version FROM threads WHERE id = :id"), {"id": a})  # the snapshot
            snapshot_taken.set()
            await other_committed.wait()
            # The row changed after this snapshot: at SERIALIZABLE the update fails with 40001.
            await tx.conn.execute(text("UPDATE threads SET version = version + 1 WHERE id = :id"), {"id": a})

        async def early(tx: Tx) -> None:
            attempts["early"] += 1
            tx.wrote_events = True
            await tx.conn.execute(text("UPDATE threads SET version = version + 1 WHERE id = :id"), {"id": a})

        async def then_early() -> None:
            await snapshot_taken.wait()
            await api.database.write(early)
            other_committed.set()

        await asyncio.wait_for(asyncio.gather(api.database.write(late), then_early()), timeout=30)
        assert "40001" in sqlstates
        assert attempts == {"late": 2, "early": 1}, attempts
        assert wakes == ["woken"] * 2, wakes
        assert retries() - before == 1
        assert await version_of(api, a) == 3


async def test_attempts_are_bounded_and_exhaustion_is_503_without_side_effects(api: Api) -> None:
    """A unit that fails with 40001 every time is tried max_attempts times, then answers 503; nothing is woken."""
    database = Database(api.database.engine, max_attempts=3)
    wakes = woken(database)
    attempts = 0
    before = retries()

    async def always_conflicts(tx: Tx) -> None:
        nonlocal attempts
        attempts += 1
        tx.wrote_events = True
        await tx.conn.execute(text("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$"))

    with pytest.raises(ServiceUnavailable):
        await database.write(always_conflicts)
    assert attempts == 3 and wakes == []
    assert retries() - before == 2


def test_the_default_attempts_absorb_a_serializable_storm() -> None:
    """The shipped default is what tests/races proves enough for 32-40 clients on one row at SERIALIZABLE."""
    from threadstore.config import Settings

    assert Settings(_env_file=None).max_transaction_attempts >= 10  # type: ignore[call-arg]
