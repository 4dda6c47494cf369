"""The transaction owner: the only module that begins, commits, rolls back or closes.

Every unit of work runs as `await database.write(work, *args)` or `await database.read(work, *args)`, which
calls `work(tx, *args)` on one connection and commits before it returns (so before any response is sent),
rolls back on any error or cancellation, and always returns the connection. Because the runner owns the
whole unit, it can run it again when it lost a race, and wake event delivery only once the commit succeeded.
`grep -rn "commit()\\|rollback()" src/` finds this file alone.

How a unit runs is decided here, from what its work declares, never by its caller:
- a read runs without BEGIN and COMMIT on PostgreSQL (each statement sees committed data); a read that
  needs a transaction (`read_consistent`: locks held to its end, one snapshot on SQLite) runs as one;
- a write declared `@one_write` changes the database with at most one statement, conditional on what it
  read. On PostgreSQL it runs without BEGIN and COMMIT: the server runs a lone statement as its own
  transaction, whole or not at all, and replies after it committed, so two round trips of three are saved
  with the same guarantee. Run again after a lost race, it runs as a transaction, whose reads lock rows;
- any other write runs as one transaction (on SQLite every write does, holding the write lock from BEGIN);
- a read declared `@from_replica` goes to the read replica when one is configured and has replayed what the
  read must see, else to the primary (db/replica.py); every other unit runs on the primary.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import sqlite3
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Concatenate, ParamSpec, TypeVar

import anyio
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from threadstore import metrics
from threadstore.config import ConfigError, Settings
from threadstore.db.admission import Admission, NoTurn
from threadstore.db.engine import WRITE_OPTION, create_engine
from threadstore.db.failures import Failure, Stale, classify, rejected_by_server, unwrapped_driver_error
from threadstore.db.replica import READ_AFTER, Behind, ReplicaState, count
from threadstore.errors import DomainError, InternalError, ServiceUnavailable

log = logging.getLogger("threadstore.db")

T = TypeVar("T")
P = ParamSpec("P")
_MAX_BACKOFF_SECONDS = 1.0
_ONE_WRITE = "__threadstore_one_write__"
_FROM_REPLICA = "__threadstore_from_replica__"
# The primary's WAL position after a commit, for read-your-writes: at or past the commit record, as the
# commit has been flushed before the server answered it.
_POSITION_AFTER_COMMIT = "SELECT pg_current_wal_lsn()"
_POSITION_TIMEOUT_SECONDS = 2.0


@dataclass
class Tx:
    """What a unit of work's code may use: the connection, the unit's clock, and whether it is a transaction.

    `in_transaction` False: each statement commits on its own (a `one_write` unit on PostgreSQL), so a read
    cannot lock what it reads; the unit's one write must be conditional on it instead.
    `wrote_events`: set by the outbox; event delivery is woken after this unit commits."""

    conn: AsyncConnection
    dialect: str
    now: datetime
    in_transaction: bool = True
    wrote_events: bool = False


Work = Callable[Concatenate[Tx, P], Awaitable[T]]


def one_write(work: Work[P, T]) -> Work[P, T]:
    """Declares that `work` changes the database with at most one statement, made conditional on everything it
    read (a repository raises `Stale` when it matched nothing), and raises no error after that statement."""
    setattr(work, _ONE_WRITE, True)
    return work


def from_replica(work: Work[P, T]) -> Work[P, T]:
    """Declares that `work` only reads, and that a replica which has replayed the caller's own writes may
    answer it: what it returns may lag other users' writes by the replica's delay."""
    setattr(work, _FROM_REPLICA, True)
    return work


class Mode(enum.Enum):
    READ = "read"  # PostgreSQL: no transaction
    ONE_STATEMENT = "one statement"  # PostgreSQL: no transaction; the write statement commits as it runs
    TRANSACTION = "transaction"


class Stage(enum.Enum):
    WORKING = "working"  # nothing has committed
    COMMITTING = "committing"  # the commit is under way: whether it happened is the server's to say


@dataclass(frozen=True)
class Committed:
    result: Any
    wrote_events: bool


@dataclass(frozen=True)
class RunAgain:
    failure: Failure


class Database:
    def __init__(
        self,
        engine: AsyncEngine,
        *,
        max_attempts: int = 10,
        replica: Database | None = None,
        replica_retry_seconds: float = 5.0,
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self.max_attempts = max_attempts
        self._admission = Admission.for_engine(engine)
        # Set by event delivery: called after each commit of a unit that recorded events.
        self.on_events_committed: Callable[[], None] | None = None
        self.replica = replica
        self._replica_state = ReplicaState(replica_retry_seconds)

    @classmethod
    def open(cls, settings: Settings) -> Database:
        engine = create_engine(settings, sqlite_connection=RollbackOnCloseConnection)
        replica = None
        if settings.read_database_url:
            if engine.dialect.name != "postgresql" or not settings.read_database_url.startswith("postgresql"):
                raise ConfigError("THREADSTORE_READ_DATABASE_URL needs PostgreSQL, for the primary and the replica")
            # One attempt: a read the replica fails is run on the primary, which has its own retries.
            replica = cls(create_engine(settings, url=settings.read_database_url), max_attempts=1)
        return cls(
            engine,
            max_attempts=settings.max_transaction_attempts,
            replica=replica,
            replica_retry_seconds=settings.read_replica_retry_seconds,
        )

    async def dispose(self) -> None:
        await self.engine.dispose()
        if self.replica is not None:
            await self.replica.engine.dispose()

    async def write(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        one_statement = getattr(work, _ONE_WRITE, False) and self.dialect == "postgresql"
        mode = Mode.ONE_STATEMENT if one_statement else Mode.TRANSACTION
        return await self._run(lambda tx: work(tx, *args, **kwargs), mode)

    async def read(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        mode = Mode.READ if self.dialect == "postgresql" else Mode.TRANSACTION

        def unit(tx: Tx) -> Awaitable[T]:
            return work(tx, *args, **kwargs)

        if self.replica is not None and getattr(work, _FROM_REPLICA, False):
            served, result = await self._read_from_replica(self.replica, unit)
            if served:
                return result  # type: ignore[no-any-return]
        return await self._run(unit, mode, write=False)

    async def _read_from_replica(self, replica: Database, work: Callable[[Tx], Awaitable[Any]]) -> tuple[bool, Any]:
        """(True, result) when the replica answered; (False, None) when the read must go to the primary."""
        state = self._replica_state
        if not state.usable():
            count("primary", "replica_resting")
            return False, None
        read_after = READ_AFTER.get()
        needed = read_after.needed() if read_after is not None else 0
        known = state.caught_up_with(needed)

        async def checked(tx: Tx) -> Any:
            if not known:
                await state.check(tx.conn, needed)
            return await work(tx)

        try:
            outcome = await replica._attempt(checked, Mode.READ, write=False)
        except Behind:
            count("primary", "replica_behind")
            return False, None
        except ServiceUnavailable:
            state.rest()  # unreachable, or down: not worth a connect timeout per read for a while
            count("primary", "replica_unavailable")
            return False, None
        except InternalError:
            count("primary", "replica_error")  # logged where it was raised; the primary may still answer
            return False, None
        if isinstance(outcome, RunAgain):
            if outcome.failure is Failure.DISCONNECTED:
                state.rest()
            count("primary", "replica_" + outcome.failure.value)  # a lost connection, a recovery conflict
            return False, None
        count("replica", "replayed" if known else "checked")
        return True, outcome.result

    async def read_consistent(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """A read run as a transaction that takes no write lock: a lock its work takes holds to its end, and
        on SQLite its statements share one snapshot."""
        return await self._run(lambda tx: work(tx, *args, **kwargs), Mode.TRANSACTION, write=False)

    async def _run(self, work: Callable[[Tx], Awaitable[T]], mode: Mode, *, write: bool = True) -> T:
        failure = Failure.RETRYABLE
        for attempt in range(1, self.max_attempts + 1):
            outcome = await self._attempt(work, mode, write=write)
            if isinstance(outcome, Committed):
                if outcome.wrote_events and self.on_events_committed is not None:
                    self.on_events_committed()
                result: T = outcome.result
                return result
            failure = outcome.failure
            if attempt < self.max_attempts:
                metrics.TRANSACTION_RETRIES.inc()
                # Full jitter: concurrent losers of a deadlock must not collide again in lockstep. Capped so
                # ten attempts stay within a few seconds.
                await asyncio.sleep(random.uniform(0, min(_MAX_BACKOFF_SECONDS, 0.01 * 2**attempt)))
            if mode is Mode.ONE_STATEMENT:
                mode = Mode.TRANSACTION  # again under the row locks of a transaction: no race is lost twice
        log.warning("giving up after %d attempts (%s)", self.max_attempts, failure.value)
        raise ServiceUnavailable("The database is busy; retry shortly.")

    async def _attempt(self, work: Callable[[Tx], Awaitable[Any]], mode: Mode, *, write: bool) -> Committed | RunAgain:
        try:
            # Connections are handed out in arrival order; the pool's own queue lets newcomers overtake.
            async with self._admission.turn():
                if self.dialect == "sqlite":
                    return await self._cancelled_once(self._attempt_on_connection(work, mode, write=write))
                return await self._attempt_on_connection(work, mode, write=write)
        except NoTurn:
            log.warning("connection pool exhausted (waited pool_timeout)")
            raise ServiceUnavailable("The service is at capacity; retry shortly.") from None

    async def _attempt_on_connection(
        self, work: Callable[[Tx], Awaitable[Any]], mode: Mode, *, write: bool
    ) -> Committed | RunAgain:
        conn = await self._connect(alive=mode is Mode.ONE_STATEMENT)
        stage = Stage.WORKING
        try:
            if mode is Mode.TRANSACTION and write and self.dialect == "sqlite":
                await conn.execution_options(**{WRITE_OPTION: True})
            elif mode is not Mode.TRANSACTION:
                await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.begin()
            tx = Tx(conn=conn, dialect=self.dialect, now=datetime.now(UTC), in_transaction=mode is Mode.TRANSACTION)
            result = await work(tx)
            stage = Stage.COMMITTING
            if mode is Mode.TRANSACTION:
                await conn.commit()
            metrics.COMMITS.inc()
            if write and self.replica is not None:
                await _note_position(conn)
            return Committed(result, tx.wrote_events)
        except BaseException as error:
            if mode is Mode.ONE_STATEMENT and not _nothing_committed(error):
                stage = Stage.COMMITTING  # the write statement may have run to its end
            if stage is Stage.COMMITTING:
                # After a failed or interrupted commit nobody knows the connection's state (SQLAlchemy
                # already considers the transaction over and would pool it unreset): discard it.
                await _discard(conn)
            else:
                await _rollback(conn)
            return _after_failure(error, stage)
        finally:
            await _close(conn)

    async def _cancelled_once(self, attempt: Coroutine[Any, Any, Committed | RunAgain]) -> Committed | RunAgain:
        """Runs `attempt` on a task of its own (SQLite), so a cancellation reaches it once and the caller returns
        only after its connection was cleaned up.

        An anyio cancel scope (Starlette's streaming response on a client disconnect) cancels its task again at
        every await until the task leaves the scope. SQLAlchemy closes the connection of a cancelled statement;
        on aiosqlite that close, cancelled again, falls back to stopping the connection's thread while the close
        still waits in the thread's queue, and the DBAPI connection is closed twice: a "Cannot operate on a
        closed database" error in a future nobody awaits. On its own task the attempt is cancelled once and its
        cleanup runs to its end. (PostgreSQL: asyncpg's fallback is a clean terminate; no task is spent there.)
        """
        caller = asyncio.current_task()
        # Named after the caller, so what a connection is held for stays visible (diagnostics, tests).
        task = asyncio.create_task(attempt, name=caller.get_name() if caller is not None else None)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.cancel()
            with anyio.CancelScope(shield=True):
                await asyncio.wait([task])
            outcome = None if task.cancelled() or task.exception() is not None else task.result()
            if isinstance(outcome, Committed) and outcome.wrote_events and self.on_events_committed is not None:
                self.on_events_committed()  # committed before the cancellation arrived: deliver it
            raise

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
        except Exception as error:
            if not unwrapped_driver_error(error):
                raise
            # The server closed the connection while it was being set up: the database went away (503).
            log.warning("connection lost while connecting: %s", type(error).__name__)
            raise ServiceUnavailable() from None


async def _note_position(conn: AsyncConnection) -> None:
    """Records the WAL position a committed write reached, for its request's answer and its user's later
    reads (db/replica.py). Never fails the unit: it has committed. Shielded: a cancellation here must not
    lose the commit's outcome (event delivery is woken by it)."""
    read_after = READ_AFTER.get()
    if read_after is None:
        return  # not a client's request (maintenance, event delivery): nobody reads after it
    with anyio.CancelScope(shield=True):
        try:
            raw = await conn.get_raw_connection()
            position = await raw.driver_connection.fetchval(  # type: ignore[union-attr]
                _POSITION_AFTER_COMMIT, timeout=_POSITION_TIMEOUT_SECONDS
            )
        except Exception as error:
            # The client may then read its write from a replica that has not replayed it yet: rare (the
            # connection died right after the commit) and logged.
            log.warning("could not read the WAL position after a commit: %s", type(error).__name__)
            await _invalidate(conn)
            return
    read_after.wrote(int(position))


def _nothing_committed(error: BaseException) -> bool:
    """In a unit without a transaction: `error` proves its write did not commit. Our own code raises between
    statements, and a statement the server answered with an error rolled back whole; a lost connection or a
    cancellation may have come after the write committed."""
    return isinstance(error, DomainError | Stale) or rejected_by_server(error)


def _after_failure(error: BaseException, stage: Stage) -> RunAgain:
    """`RunAgain` when the unit may safely run again; otherwise raises what the caller should see."""
    if isinstance(error, DomainError) or not isinstance(error, Exception):
        raise error  # the service's answer, or a cancellation: passed on as they are
    if isinstance(error, OSError | TimeoutError) and not isinstance(error, sa_exc.SQLAlchemyError):
        # A network failure the driver did not wrap: the database is unreachable, not a bug of ours.
        log.warning("database connection failed: %s", type(error).__name__)
        raise ServiceUnavailable() from None
    if not isinstance(error, sa_exc.SQLAlchemyError | Stale):
        raise error  # a bug: the app's last-resort handler logs it and answers 500
    failure = classify(error)
    if failure is Failure.RETRYABLE or (failure is Failure.DISCONNECTED and stage is Stage.WORKING):
        return RunAgain(failure)  # a lost race, or a connection lost before anything could commit
    if failure in (Failure.UNAVAILABLE, Failure.DISCONNECTED):
        log.warning("database unavailable: %s", _describe(error))
        raise ServiceUnavailable() from error
    log.error("database error: %s", _describe(error), exc_info=error)
    raise InternalError("An internal error occurred.") from error


def _describe(error: BaseException) -> str:
    # For the log only (never the client): the exception type and SQLSTATE are enough to diagnose.
    orig = getattr(error, "orig", None)
    return f"{type(error).__name__}({type(orig).__name__ if orig else ''}) {getattr(orig, 'sqlstate', '')}"


async def _alive(conn: AsyncConnection, engine: AsyncEngine) -> AsyncConnection:
    """`conn`, or a fresh connection if the server already closed this one while it sat in the pool.

    A unit without a transaction cannot be run again after a lost connection (its write may have committed),
    so a connection the driver already knows to be dead is swapped before the first statement. No round trip:
    this reads the driver's state, which it updated when the server's goodbye arrived."""
    while True:  # ends: each pass drops one dead pooled connection, and new ones are alive
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        if driver is None or not driver.is_closed():
            return conn
        await _invalidate(conn)
        await _close(conn)
        conn = await engine.connect()


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
