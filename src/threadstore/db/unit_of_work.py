"""The transaction owner: the only module that begins, commits, rolls back or closes.

Every request's database work runs as `await database.write(work)` or `await database.read(work)`: one
connection, one transaction, committed before the call returns (so before any response is sent), rolled back
on any error or cancellation, and the connection always returned. Because the runner owns the whole unit,
it can re-run it on a serialization failure or deadlock, and run after-commit hooks (event delivery) only
once the commit has succeeded. `grep -rn "commit()\\|rollback()" src/` finds this file alone.

A write whose change is one statement (`write(work, single_statement=True)`) runs on PostgreSQL without
BEGIN and COMMIT: the server runs a lone statement as its own transaction, whole or not at all, and its reply
comes after that transaction committed, so two round trips of three are saved with the same guarantee. Such
work may read first, but it must make its one write conditional on what it read (a version check) and raise
`StaleRead` when the write matched nothing; the runner then re-runs it as an ordinary transaction, in which
the work locks what it reads (`Tx.autocommit` is False), so a contended row cannot starve it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import anyio
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from threadstore import metrics
from threadstore.db.admission import Admission, NoTurn
from threadstore.db.failures import Failure, classify, rejected_by_server
from threadstore.errors import DomainError, InternalError, ServiceUnavailable

log = logging.getLogger("threadstore.db")

T = TypeVar("T")
# Execution option set on write units; the SQLite engine's "begin" hook then takes the write lock up front.
WRITE_OPTION = "threadstore_write"
_MAX_BACKOFF_SECONDS = 1.0
AfterCommit = Callable[[], Awaitable[None] | None]


@dataclass
class Tx:
    """What a unit of work's code may use: the connection, the unit's clock, and after-commit hooks.

    `autocommit`: each statement commits on its own (a single-statement write on PostgreSQL, see above)."""

    conn: AsyncConnection
    dialect: str
    now: datetime
    autocommit: bool = False
    _after_commit: list[AfterCommit] = field(default_factory=list)

    def after_commit(self, hook: AfterCommit) -> None:
        """Run `hook` once this unit has committed; dropped if it rolls back or is retried."""
        self._after_commit.append(hook)


class StaleRead(Exception):
    """A conditional write matched nothing: what the unit read has changed since. The runner re-runs it."""


class _Retry(Exception):
    def __init__(self, failure: Failure) -> None:
        self.failure = failure


class Database:
    def __init__(self, engine: AsyncEngine, *, max_attempts: int = 10) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.max_attempts = max_attempts
        self._admission = Admission.for_engine(engine)

    async def write(self, work: Callable[[Tx], Awaitable[T]], *, single_statement: bool = False) -> T:
        """`single_statement`: `work` changes the database with one statement, conditional on what it read."""
        return await self._run(work, write=True, autocommit=single_statement and self.dialect == "postgresql")

    async def read(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        return await self._run(work, write=False, autocommit=False)

    async def _run(self, work: Callable[[Tx], Awaitable[T]], *, write: bool, autocommit: bool) -> T:
        attempt = 1
        while True:
            try:
                result, hooks = await self._attempt(work, write=write, autocommit=autocommit)
            except _Retry as retry:
                if attempt >= self.max_attempts:
                    log.warning("giving up after %d attempts (%s)", attempt, retry.failure.value)
                    raise ServiceUnavailable("The database is busy; retry shortly.") from None
                metrics.TRANSACTION_RETRIES.inc()
                # Full jitter: concurrent losers of a deadlock must not collide again in lockstep. Capped so
                # ten attempts stay within a few seconds.
                await asyncio.sleep(random.uniform(0, min(_MAX_BACKOFF_SECONDS, 0.01 * 2**attempt)))
                attempt += 1
                autocommit = False  # run again under the row locks of a real transaction: no lost race twice
                continue
            for hook in hooks:
                await _run_hook(hook)
            return result

    async def _attempt(
        self, work: Callable[[Tx], Awaitable[T]], *, write: bool, autocommit: bool
    ) -> tuple[T, list[AfterCommit]]:
        try:
            # Connections are handed out in arrival order; the pool's own queue lets newcomers overtake.
            async with self._admission.turn():
                return await self._attempt_on_connection(work, write=write, autocommit=autocommit)
        except NoTurn:
            log.warning("connection pool exhausted (waited pool_timeout)")
            raise ServiceUnavailable("The service is at capacity; retry shortly.") from None

    async def _attempt_on_connection(
        self, work: Callable[[Tx], Awaitable[T]], *, write: bool, autocommit: bool
    ) -> tuple[T, list[AfterCommit]]:
        conn = await self._connect(alive=autocommit)
        committing = False
        try:
            if write and self.dialect == "sqlite":
                await conn.execution_options(**{WRITE_OPTION: True})
            elif autocommit or (not write and self.dialect == "postgresql"):
                # Reads need no BEGIN/COMMIT round trips; each statement sees committed data.
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.begin()
            tx = Tx(conn=conn, dialect=self.dialect, now=datetime.now(UTC), autocommit=autocommit)
            # In autocommit the write statement commits as it runs: from its start the outcome is the server's.
            committing = autocommit
            result = await work(tx)
            committing = True
            if not autocommit:
                await conn.commit()
            metrics.COMMITS.inc()
            return result, tx._after_commit
        except BaseException as error:
            if isinstance(error, DomainError | StaleRead) or (
                autocommit and (_failed_reading(error) or rejected_by_server(error))
            ):
                # Raised by our own code between statements, by a statement that only reads, or by the
                # server rejecting the write: in autocommit nothing was committed, the connection is sound
                # (no need to drop it), and the unit may run again.
                committing = False
            if committing:
                # After a failed or interrupted COMMIT nobody knows the connection's state (SQLAlchemy
                # already considers the transaction over and would pool it unreset): discard it.
                await _discard(conn)
            else:
                await _rollback(conn)
            raise _translate(error, committing=committing) from _cause(error)
        finally:
            await _close(conn)

    async def _connect(self, *, alive: bool = False) -> AsyncConnection:
        try:
            conn = await self.engine.connect()
            if alive:
                conn = await _alive(conn, self.engine)
            return conn
        except sa_exc.TimeoutError:
            log.warning("connection pool exhausted (waited pool_timeout)")
            raise ServiceUnavailable("The service is at capacity; retry shortly.") from None
        except (TimeoutError, sa_exc.DBAPIError, OSError) as error:
            log.warning("cannot connect to the database: %s", type(error).__name__)
            raise ServiceUnavailable() from None


async def _alive(conn: AsyncConnection, engine: AsyncEngine) -> AsyncConnection:
    """`conn`, or a fresh connection if the server already closed this one while it sat in the pool.

    A unit in autocommit cannot be re-run after a lost connection (its write may have committed), so a
    connection the driver already knows to be dead is swapped before the first statement. No round trip:
    this reads the driver's state, which it updated when the server's goodbye arrived."""
    while True:  # ends: each pass drops one dead pooled connection, and new ones are alive
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        if driver is None or not driver.is_closed():
            return conn
        await _invalidate(conn)
        await _close(conn)
        conn = await engine.connect()


def _failed_reading(error: BaseException) -> bool:
    # Our writes never start with SELECT (they are INSERT/UPDATE/DELETE, or WITH … for a write and its event).
    statement = getattr(error, "statement", None) if isinstance(error, sa_exc.DBAPIError) else None
    return isinstance(statement, str) and statement.lstrip()[:6].upper() == "SELECT"


def _translate(error: BaseException, *, committing: bool) -> BaseException:
    if isinstance(error, StaleRead):
        return _Retry(Failure.RETRYABLE)
    if isinstance(error, DomainError | asyncio.CancelledError) or not isinstance(error, Exception):
        return error
    if isinstance(error, OSError | TimeoutError) and not isinstance(error, sa_exc.SQLAlchemyError):
        # A network failure the driver did not wrap: the database is unreachable, not a bug of ours.
        log.warning("database connection failed: %s", type(error).__name__)
        return ServiceUnavailable()
    if not isinstance(error, sa_exc.SQLAlchemyError):
        return error  # a bug: the app's last-resort handler logs it and answers 500
    failure = classify(error)
    if failure is Failure.RETRYABLE:
        return _Retry(failure)
    if failure is Failure.DISCONNECTED and not committing:
        # The server never saw COMMIT, so the transaction is gone whole: running it again is safe.
        return _Retry(failure)
    if failure in (Failure.UNAVAILABLE, Failure.DISCONNECTED):
        log.warning("database unavailable: %s", _describe(error))
        return ServiceUnavailable()
    log.error("database error: %s", _describe(error), exc_info=error)
    return InternalError("An internal error occurred.")


def _cause(error: BaseException) -> BaseException | None:
    return error if isinstance(error, sa_exc.SQLAlchemyError) else None


def _describe(error: BaseException) -> str:
    # For the log only (never the client): the exception type and SQLSTATE are enough to diagnose.
    orig = getattr(error, "orig", None)
    return f"{type(error).__name__}({type(orig).__name__ if orig else ''}) {getattr(orig, 'sqlstate', '')}"


async def _rollback(conn: AsyncConnection) -> None:
    # Shielded: under anyio cancel scopes an unshielded await in cleanup is cancelled again, which would
    # leave the transaction open on a connection the pool then hands to someone else.
    with anyio.CancelScope(shield=True):
        try:
            if conn.in_transaction():
                metrics.ROLLBACKS.inc()
                await conn.rollback()
        except BaseException:
            # A connection that cannot roll back is not trusted again: drop it instead of pooling it.
            log.warning("rollback failed; discarding the connection")
            await _invalidate(conn)


async def _discard(conn: AsyncConnection) -> None:
    with anyio.CancelScope(shield=True):
        metrics.ROLLBACKS.inc()
        await _invalidate(conn)


async def _invalidate(conn: AsyncConnection) -> None:
    try:
        await conn.invalidate()
    except BaseException:
        log.warning("could not invalidate a broken connection", exc_info=True)


async def _close(conn: AsyncConnection) -> None:
    with anyio.CancelScope(shield=True):
        try:
            await conn.close()
        except BaseException:
            log.warning("closing the connection failed; discarding it")
            await _invalidate(conn)


async def _run_hook(hook: AfterCommit) -> None:
    # After commit the write has happened: a failing hook must not turn it into an error response.
    try:
        outcome: Any = hook()
        if outcome is not None:
            await outcome
    except Exception:
        log.exception("after-commit hook failed")


class RollbackOnCloseConnection(sqlite3.Connection):
    """The SQLite engine's DBAPI connection: closing it always ends its transaction and so releases its locks.

    Python's sqlite3 (3.11 here) closes with `sqlite3_close_v2` without finalizing the statements of live
    cursors; SQLite then keeps the connection as a zombie holding its transaction (and the write lock of
    BEGIN IMMEDIATE) until those cursors are garbage-collected. A statement interrupted by cancellation leaves
    such a cursor (its CancelledError's traceback references it) while SQLAlchemy discards the connection by
    closing it, so later writers waited out busy_timeout. ROLLBACK aborts pending statements: the zombie then
    holds nothing. This runs in aiosqlite's worker thread in queue order, where no cancellation can skip it.
    """

    def close(self) -> None:
        try:
            if self.in_transaction:
                self.rollback()
        finally:
            super().close()
