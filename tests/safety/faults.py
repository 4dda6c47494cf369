"""Fault injection through the real driver path: count a request's database operations, fail operation N.

An operation is a statement as the driver sees it (SQLite's BEGIN IMMEDIATE included; on PostgreSQL
asyncpg sends BEGIN together with the first statement) or a COMMIT of a driver-level transaction. The hooks
are SQLAlchemy's dialect events (`do_execute`, `do_execute_no_params`, `do_executemany`), which run inside
the engine's own error handling, and the dialect's `do_commit`: an injected fault travels exactly the path
a real one does (wrapping into a DBAPIError, disconnect detection, invalidation). Nothing is mocked.

Flavours:
- `error`: the database refuses the operation. PostgreSQL: the statement is replaced by one the server
  rejects; at COMMIT a deferred constraint trigger (installed by `install_commit_trigger`) raises during
  COMMIT itself. SQLite: the driver raises `sqlite3.OperationalError("disk I/O error")`.
- `disconnect`: the connection is lost before the operation. PostgreSQL: `pg_terminate_backend` of the
  connection's own backend from a side connection (and waiting until it is gone). SQLite: the underlying
  sqlite3 connection is closed in the driver's thread.
- `ack-lost` (COMMIT only): the COMMIT succeeds, then the connection is lost before the driver returns,
  so the application cannot know the outcome.

Only operations of code running under `Injector.scope()` (a context variable) are counted, so background
tasks on the same engine never shift the numbering.
"""

from __future__ import annotations

import asyncio
import contextvars
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_

from tests.conftest import Backend

# Search's owner term (db/search_terms.py), which its statements carry inline: another user's in every run.
_OWNER_TERM = re.compile(r"#[0-9a-f]{16}")

ERROR = "error"
DISCONNECT = "disconnect"
ACK_LOST = "ack-lost"
SERIALIZATION = "serialization"  # PostgreSQL only: SQLSTATE 40001, which the transaction owner re-runs
COMMIT = "COMMIT"

# SQLSTATE 58030 io_error: a server-side failure the application cannot have anticipated.
PG_FAULT_SQL = "DO $$BEGIN RAISE EXCEPTION 'fault injected' USING ERRCODE = '58030'; END$$"
PG_SERIALIZATION_SQL = "DO $$BEGIN RAISE EXCEPTION 'fault injected' USING ERRCODE = '40001'; END$$"
COMMIT_FLAG = "threadstore_test.fail_at_commit"

_active: contextvars.ContextVar[Injector | None] = contextvars.ContextVar("fault_injector", default=None)


async def install_commit_trigger(dsn: str) -> None:
    """A deferred constraint trigger on every table: it raises at COMMIT when the committing transaction set
    `COMMIT_FLAG`, as a real deferred constraint (a foreign key, an exclusion) fails at COMMIT."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            f"""
            CREATE OR REPLACE FUNCTION threadstore_test_fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF current_setting('{COMMIT_FLAG}', true) = 'on' THEN
                    RAISE EXCEPTION 'deferred check failed' USING ERRCODE = '23514';
                END IF;
                RETURN NULL;
            END $$
            """
        )
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        for row in tables:
            await conn.execute(
                f"CREATE CONSTRAINT TRIGGER threadstore_test_fail_at_commit AFTER INSERT OR UPDATE OR DELETE "
                f'ON "{row["tablename"]}" DEFERRABLE INITIALLY DEFERRED FOR EACH ROW '
                f"EXECUTE FUNCTION threadstore_test_fail_at_commit()"
            )
    finally:
        await conn.close()


class Injector:
    """Counts the database operations of code under `scope()` and fails the `fail_at`-th (1-based)."""

    def __init__(self, engine: AsyncEngine, backend: Backend) -> None:
        self.async_engine = engine
        self.engine = engine.sync_engine
        self.backend = backend
        self.ops: list[str] = []
        self.fail_at: int | None = None
        self.flavour = ERROR
        self.fired: str | None = None
        self.connections: list[int] = []  # id of the driver connection of each operation
        self.cancel_task: asyncio.Task[Any] | None = None
        self._side: asyncpg.Connection | None = None
        self._original_commit: Any = None

    async def __aenter__(self) -> Injector:
        # The engine's first connection runs the dialect's own set-up queries: keep them out of any count.
        async with self.async_engine.connect():
            pass
        if self.backend.is_postgres:
            assert self.backend.dsn is not None
            self._side = await asyncpg.connect(self.backend.dsn)
        dialect = self.engine.dialect
        self._original_commit = dialect.do_commit
        dialect.do_commit = self._do_commit  # type: ignore[method-assign]
        event.listen(self.engine, "do_execute", self._do_execute)
        event.listen(self.engine, "do_execute_no_params", self._do_execute_no_params)
        event.listen(self.engine, "do_executemany", self._do_execute)
        return self

    async def __aexit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        event.remove(self.engine, "do_execute", self._do_execute)
        event.remove(self.engine, "do_execute_no_params", self._do_execute_no_params)
        event.remove(self.engine, "do_executemany", self._do_execute)
        self.engine.dialect.do_commit = self._original_commit  # type: ignore[method-assign]
        if self._side is not None:
            await self._side.close()

    @contextmanager
    def scope(self, fail_at: int | None = None, flavour: str = ERROR) -> Iterator[Injector]:
        """Counts (and with `fail_at`, fails) the operations of the code run inside this block."""
        self.ops, self.connections, self.fail_at, self.flavour, self.fired = [], [], fail_at, flavour, None
        token = _active.set(self)
        try:
            yield self
        finally:
            _active.reset(token)

    @contextmanager
    def cancelling(self, task: asyncio.Task[Any], at: int) -> Iterator[Injector]:
        """Cancels `task` when its operation `at` starts (the await of that operation sees the cancellation)."""
        self.cancel_task = task
        try:
            with self.scope(at, flavour="cancel") as scoped:
                yield scoped
        finally:
            self.cancel_task = None

    # -- hooks -------------------------------------------------------------------------------------------

    def _do_execute(self, cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        return self._on_statement(cursor, statement, parameters, context)

    def _do_execute_no_params(self, cursor: Any, statement: str, context: Any) -> bool:
        return self._on_statement(cursor, statement, (), context)

    def _on_statement(self, cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        if not self._count(statement, context.root_connection.connection):
            return False
        fairy = context.root_connection.connection
        if self.flavour == "cancel":
            self._cancel()
        elif self.flavour == DISCONNECT:
            self._lose(fairy)
        elif self.flavour == ACK_LOST:
            # A statement that commits as it completes (autocommit): it runs, then the connection is lost
            # before the driver returns its reply.
            cursor.execute(statement, parameters)
            self._lose(fairy)
            cursor.execute("SELECT 1")  # the driver notices the loss, as it would reading the reply
            raise AssertionError("a lost connection still answered")
        elif self.backend.is_postgres:
            cursor.execute(PG_SERIALIZATION_SQL if self.flavour == SERIALIZATION else PG_FAULT_SQL)
            raise AssertionError("the injected statement did not fail")
        else:
            raise sqlite3.OperationalError("disk I/O error")
        return False  # the real statement now runs on the dead connection, and fails as it would

    def _do_commit(self, fairy: Any) -> None:
        if _active.get() is not self or not self._in_transaction(fairy) or not self._count(COMMIT, fairy):
            self._original_commit(fairy)
            return
        if self.flavour == "cancel":
            self._cancel()
        elif self.flavour == DISCONNECT:
            self._lose(fairy)
        elif self.flavour == ACK_LOST:
            self._original_commit(fairy)
            self._lose(fairy)
            cursor = fairy.cursor()
            cursor.execute("SELECT 1")  # the driver notices the loss, as it would reading COMMIT's reply
            raise AssertionError("a lost connection still answered")
        elif self.backend.is_postgres and self.flavour == SERIALIZATION:
            cursor = fairy.cursor()
            cursor.execute(PG_SERIALIZATION_SQL)
        elif self.backend.is_postgres:
            cursor = fairy.cursor()
            cursor.execute(f"SELECT set_config('{COMMIT_FLAG}', 'on', true)")
            cursor.close()
        else:
            raise sqlite3.OperationalError("disk I/O error")
        self._original_commit(fairy)

    # -- helpers -----------------------------------------------------------------------------------------

    def _count(self, statement: str, fairy: Any) -> bool:
        """Records the operation (and the driver connection it ran on); True if it is the one to fail."""
        if _active.get() is not self:
            return False
        statement = _OWNER_TERM.sub("#owner", statement)  # a search's user, written into its text
        self.ops.append(statement)
        self.connections.append(id(fairy.driver_connection))
        if self.fail_at == len(self.ops):
            self.fired = statement
            return True
        return False

    def _cancel(self) -> None:
        assert self.cancel_task is not None
        self.cancel_task.cancel()

    def _in_transaction(self, fairy: Any) -> bool:
        driver = fairy.driver_connection
        if self.backend.is_postgres:
            return bool(driver.is_in_transaction())
        return bool(driver._conn.in_transaction)

    def _lose(self, fairy: Any) -> None:
        driver = fairy.driver_connection
        if self.backend.is_postgres:
            await_(self._terminate(driver.get_server_pid()))
        else:
            await_(driver._execute(driver._conn.close))

    async def _terminate(self, pid: int) -> None:
        assert self._side is not None
        await self._side.execute("SELECT pg_terminate_backend($1)", pid)
        deadline = time.monotonic() + 10
        while await self._side.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid):
            assert time.monotonic() < deadline, f"backend {pid} survived pg_terminate_backend"
            await asyncio.sleep(0.005)


def label(statement: str) -> str:
    """A short name for an operation, for reports."""
    words = statement.split()
    head = " ".join(words[:4])
    return head if len(head) <= 60 else head[:60]


def decisive_operation(operations: list[str], backend: Backend) -> int:
    """The number of the operation at which a request's write commits: its last COMMIT, or for a unit
    PostgreSQL runs as one autocommit statement (no COMMIT at all) that statement; 0 for a read."""
    last_commit = max((n for n, op in enumerate(operations, 1) if op == COMMIT), default=0)
    if last_commit or not backend.is_postgres:
        return last_commit
    writes = [n for n, op in enumerate(operations, 1) if writes_rows(op)]
    return max(writes, default=0)


_WRITE_IN_CTE = re.compile(r"\bINSERT\s+INTO\b|\bDELETE\s+FROM\b|\bUPDATE\s+\S+\s+SET\b", re.IGNORECASE)


def writes_rows(statement: str) -> bool:
    """Whether a statement may change rows: anything but a SELECT, except a WITH whose parts only read (the
    branch reads are recursive CTEs; the one-statement writes are CTEs too, holding an INSERT or UPDATE)."""
    head = statement.lstrip().upper()
    if head.startswith("SELECT"):
        return False
    if head.startswith("WITH"):
        return bool(_WRITE_IN_CTE.search(statement))
    return True


def flavours_for(operation: str, backend: Backend, *, decisive: bool = False, long: bool = False) -> list[str]:
    """The fault flavours that apply to an operation (the long mode adds a retryable serialization failure).
    `decisive`: the operation commits the write (see `decisive_operation`), so its reply can be lost."""
    flavours = [ERROR, DISCONNECT, ACK_LOST] if operation == COMMIT or decisive else [ERROR, DISCONNECT]
    if long and backend.is_postgres:
        flavours.append(SERIALIZATION)
    return flavours
