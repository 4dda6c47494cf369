"""An event exists for a client only once its transaction committed, and never for one that rolled back."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import make_url

from tests.conftest import Backend, execute_sql, fresh_database, make_settings, new_user
from tests.db.test_transaction_owner import FAIL_AT_COMMIT
from tests.events.conftest import FAST
from tests.harness.app import running_api
from tests.harness.client import Api
from tests.http.problems import assert_problem
from tests.pg_server import PgServer
from threadstore.db import event_body
from threadstore.db.tables import events

pytestmark = pytest.mark.through_pgbouncer


async def _recorded_types(api: Api, user: str) -> list[str]:
    async with api.database.engine.connect() as conn:
        rows = await conn.execute(select(events.c.type).where(events.c.user_id == user).order_by(events.c.id))
        return list(rows.scalars())


async def test_a_write_whose_commit_fails_sends_no_event(api: Api) -> None:
    """The COMMIT itself raises, in the driver path (SQLAlchemy's commit event), on both databases. (A keyed
    create, a transaction: without a key it is a single statement, which PostgreSQL commits without a COMMIT;
    the deferred-constraint test below fails that kind at its commit.)"""
    user = new_user()
    failing = {"on": False}

    def fail_commit(_conn: Any) -> None:
        if failing["on"]:
            raise ConnectionError("injected commit failure")

    sync_engine = api.database.engine.sync_engine
    event.listen(sync_engine, "commit", fail_commit)
    try:
        async with api.stream(user) as stream:
            keep_alive = await stream.frame()  # the stream is past its catch-up read: it waits in memory now
            assert keep_alive is not None and keep_alive.comment == "keep-alive"
            failing["on"] = True
            try:
                body = {"title": "lost", "messages": [{"content": "hello"}]}
                keyed = {"Idempotency-Key": "lost"}
                failed = await api.request("POST", "/api/threads", user=user, json=body, headers=keyed)
            finally:
                failing["on"] = False
            assert failed.status_code >= 500
            kept = await api.create_thread(user, title="kept")
            first = await stream.event()
    finally:
        event.remove(sync_engine, "commit", fail_commit)
    assert first is not None and first.data == kept
    assert await _recorded_types(api, user) == ["thread.created"]


@pytest.fixture
async def served_with_commit_trigger(pg_server: PgServer | None, tmp_path: Path) -> AsyncIterator[Api]:
    async with fresh_database("postgresql", pg_server, tmp_path) as backend:
        assert backend.dsn is not None
        await execute_sql(backend.dsn, FAIL_AT_COMMIT)
        async with running_api(backend, make_settings(backend, tmp_path, **FAST), real_socket=True) as api:
            yield api


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(("POST", {"title": "fail-at-commit"}, {"Idempotency-Key": "k"}), id="transaction"),
        pytest.param(
            ("POST", {"title": "fail-at-commit", "messages": [{"content": "a"}]}, {}), id="one-statement-create"
        ),
        pytest.param(("PATCH", {"title": "fail-at-commit"}, {}), id="one-statement-patch"),
    ],
)
async def test_a_deferred_constraint_failing_at_commit_sends_no_event(
    served_with_commit_trigger: Api, write: tuple[str, dict[str, Any], dict[str, str]]
) -> None:
    """PostgreSQL: the server refuses the commit (a deferred constraint trigger) after the event row was
    written in the same transaction: at COMMIT, or for a single-statement write at the end of its statement."""
    api = served_with_commit_trigger
    user = new_user()
    method, body, headers = write
    target = await api.create_thread(user, title="target") if method == "PATCH" else None
    async with api.stream(user) as stream:
        if target is not None:
            failed = await api.request("PATCH", f"/api/threads/{target['id']}", user=user, json=body)
        else:
            failed = await api.request("POST", "/api/threads", user=user, json=body, headers=headers)
        assert_problem(failed, 500)
        kept = await api.create_thread(user, title="kept")
        first = await stream.event()
    assert first is not None and first.data == kept
    assert await _recorded_types(api, user) == ["thread.created"] * (2 if target else 1)


class _HeldEvent:
    """An event row inserted by a transaction of another connection that stays open until `commit()`."""

    def __init__(self, backend: Backend, user: str) -> None:
        self._backend = backend
        self._user = user
        self._pg: asyncpg.Connection | None = None
        self._pg_tx: Any = None
        self._sqlite: sqlite3.Connection | None = None

    async def insert(self) -> None:
        sql = (
            "INSERT INTO events (user_id, thread_id, type, body, created_at)"
            " VALUES ({0}, 'held', 'thread.deleted', {1}, {2})"
        )
        data = event_body.raw('{"id": "held"}')
        if self._backend.is_postgres:
            assert self._backend.dsn is not None
            self._pg = await asyncpg.connect(self._backend.dsn)
            self._pg_tx = self._pg.transaction()
            await self._pg_tx.start()
            await self._pg.execute(sql.format("$1", "$2", "now()"), self._user, data)
        else:
            path = make_url(self._backend.url).database
            assert path is not None
            self._sqlite = sqlite3.connect(path, isolation_level=None)
            self._sqlite.execute("BEGIN IMMEDIATE")
            self._sqlite.execute(sql.format("?", "?", "'2026-01-01 00:00:00.000000'"), (self._user, data))

    async def commit(self) -> None:
        if self._pg is not None:
            await self._pg_tx.commit()
        elif self._sqlite is not None:
            self._sqlite.execute("COMMIT")

    async def close(self) -> None:
        if self._pg is not None:
            await self._pg.close()
        if self._sqlite is not None:
            self._sqlite.close()


async def test_an_event_is_delivered_only_once_its_transaction_committed(api: Api) -> None:
    user = new_user()
    held = _HeldEvent(api.backend, user)
    try:
        async with api.stream(user) as stream:
            await held.insert()
            # Several poll and sweep intervals pass: nothing but keep-alives while the transaction is open.
            for _ in range(5):
                frame = await stream.frame()
                assert frame is not None and frame.comment == "keep-alive", frame
            await held.commit()
            delivered = await stream.event()
    finally:
        await held.close()
    assert delivered is not None and delivered.data == {"id": "held"}
