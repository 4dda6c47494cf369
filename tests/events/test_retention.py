"""Retention: events are pruned only after the configured time, only as a prefix of delivered positions,
never before they are recorded as delivered, and a resume point older than what is kept is refused (409)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import event, insert, select, update

from tests.conftest import Backend, fresh_database, make_settings, new_user, running_api
from tests.http.problems import assert_problem
from tests.pg_server import PgServer
from threadstore import maintenance
from threadstore.db import event_body
from threadstore.db.tables import events
from threadstore.db.unit_of_work import Database
from threadstore.events import repository
from threadstore.events.publisher import Publisher

OLD = datetime.now(UTC) - timedelta(days=30)


@pytest.fixture
async def own_database(backend: Backend, pg_server: PgServer | None, tmp_path: Path) -> AsyncIterator[Backend]:
    async with fresh_database(backend.name, pg_server, tmp_path) as fresh:
        yield fresh


async def _insert(database: Database, user: str, created_at: datetime, count: int = 1) -> None:
    body = event_body.raw('{"id": "x"}')
    rows = [
        {"user_id": user, "thread_id": "x", "type": "thread.deleted", "body": body, "created_at": created_at}
        for _ in range(count)
    ]
    async with database.engine.begin() as conn:
        await conn.execute(insert(events), rows)


async def _ids(database: Database) -> list[int]:
    async with database.engine.connect() as conn:
        return list((await conn.execute(select(events.c.id).order_by(events.c.id))).scalars())


async def test_pruning_deletes_only_an_old_delivered_prefix(own_database: Backend, tmp_path: Path) -> None:
    settings = make_settings(own_database, tmp_path)
    database = Database.open(settings)
    publisher = Publisher(database, lambda _: None, sweep_interval=1.0)
    try:
        user = new_user()
        await _insert(database, user, OLD, 3)
        await _insert(database, user, datetime.now(UTC), 2)
        assert await publisher.publish_all(record=True) == 5
        await _insert(database, user, OLD)  # committed, not yet recorded as delivered
        cutoff = datetime.now(UTC) - timedelta(days=7)

        assert await maintenance.prune_events(database, cutoff) == 3
        assert await _ids(database) == [4, 5, 6]
        assert await database.read(repository.pruned_through) == 3

        async with database.engine.begin() as conn:
            await conn.execute(update(events).values(created_at=OLD))
        # Everything is old now; the one not recorded as delivered is not touched.
        assert await maintenance.prune_events(database, cutoff) == 2
        assert await _ids(database) == [6]
        assert await publisher.publish_all(record=True) == 6
        assert await maintenance.prune_events(database, cutoff) == 1
        assert await _ids(database) == []
        # Ids go on from where they were, also after the table was emptied.
        await _insert(database, user, OLD)
        assert await _ids(database) == [7]
    finally:
        publisher.stop()
        await database.engine.dispose()


async def test_pruned_through_never_moves_backwards(own_database: Backend, tmp_path: Path) -> None:
    """Two instances prune at once: the later commit computed an older bound than the one already committed
    (at READ COMMITTED its UPDATE finds the other's row). Made deterministic: the other's update is run on the
    same connection just before this one's."""
    settings = make_settings(own_database, tmp_path)
    database = Database.open(settings)
    publisher = Publisher(database, lambda _: None, sweep_interval=1.0)

    injected = []

    def other_instance_first(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE EVENT_STATE SET PRUNED_THROUGH") and not injected:
            injected.append(statement)
            conn.exec_driver_sql("UPDATE event_state SET pruned_through = 3")

    try:
        await _insert(database, new_user(), OLD, 3)
        assert await publisher.publish_all(record=True) == 3
        event.listen(database.engine.sync_engine, "before_cursor_execute", other_instance_first)
        try:
            await database.write(repository.delete_expired_prefix, datetime.now(UTC), 2)
        finally:
            event.remove(database.engine.sync_engine, "before_cursor_execute", other_instance_first)
        assert injected
        assert await database.read(repository.pruned_through) == 3
    finally:
        publisher.stop()
        await database.engine.dispose()


async def test_a_resume_point_older_than_the_kept_events_is_409(own_database: Backend, tmp_path: Path) -> None:
    async with running_api(own_database, make_settings(own_database, tmp_path)) as api:
        user = new_user()
        for _ in range(4):
            assert (await api.request("POST", "/api/threads", user=user, json={})).status_code == 201
        await api.app.state.event_publisher.publish_all(record=True)
        async with api.database.engine.begin() as conn:
            await conn.execute(update(events).where(events.c.id <= 2).values(created_at=OLD))
        assert await maintenance.prune_events(api.database, datetime.now(UTC) - timedelta(days=1)) == 2

        body = assert_problem(await api.request("GET", "/api/events", user=user, headers={"Last-Event-ID": "1"}), 409)
        assert "no longer kept" in body["detail"]


def test_retention_below_the_contracts_24_hours_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError):
        make_settings(Backend("sqlite", "sqlite+aiosqlite:///x.db"), tmp_path, event_retention_seconds=3600)
    with pytest.raises(ValidationError):
        make_settings(Backend("sqlite", "sqlite+aiosqlite:///x.db"), tmp_path, event_keep_alive_seconds=16)
