"""Classifies database and driver exceptions into the few kinds the unit of work acts on.

This is the only place that looks inside driver errors and the only place that says which failures are
worth running a unit of work again for; everything above the unit of work sees domain errors.
"""

from __future__ import annotations

import enum
import sqlite3

import asyncpg
from sqlalchemy import exc as sa_exc


class Failure(enum.Enum):
    RETRYABLE = "retryable"  # the unit lost a race (serialization, deadlock, stale read): run it again whole
    UNAVAILABLE = "unavailable"  # cannot reach or hold the database (down, pool timeout, lock timeout)
    DISCONNECTED = "disconnected"  # the connection died under us: run again only if nothing can have committed
    INTERNAL = "internal"  # anything else: a bug or an unexpected constraint


class Stale(Exception):
    """A compare-and-set write matched nothing: the row changed after the unit read it. Raised by repositories;
    the unit of work runs the unit again, which then reads the new row."""


_RETRYABLE_SQLSTATES = {"40001", "40P01"}
# 55P03 lock_not_available (lock_timeout), 57014 query_canceled (statement_timeout), 57P0x admin shutdown /
# crash / cannot connect now, 53xxx insufficient resources (too many connections), 08xxx connection exception.
_UNAVAILABLE_PREFIXES = ("55P03", "57014", "57P", "53", "08")


_RETRY_ON_DUPLICATE = {"pk_idempotency_keys"}


def constraint_name(error: BaseException) -> str | None:
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = getattr(current, "constraint_name", None)
        if isinstance(name, str):
            return name
        current = getattr(current, "orig", None) or current.__cause__
    return None


def sqlstate(error: BaseException) -> str | None:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        code = getattr(current, "sqlstate", None) or getattr(current, "pgcode", None)
        if isinstance(code, str):
            return code
        current = getattr(current, "orig", None) or current.__cause__
    return None


def rejected_by_server(error: BaseException) -> bool:
    """The server answered the statement with an error, so a statement that was its own transaction
    (autocommit) rolled back whole and the connection is still sound.

    Not so for a lost connection (no answer), the server going away (08xxx, 57Pxx), or a cancel request
    (57014), which the server can act on between the commit and the reply."""
    if not isinstance(error, sa_exc.DBAPIError) or error.connection_invalidated:
        return False
    code = sqlstate(error)
    return code is not None and not code.startswith(("08", "57"))


def classify(error: BaseException) -> Failure:
    if isinstance(error, Stale):
        return Failure.RETRYABLE
    if isinstance(error, sa_exc.TimeoutError):  # waited pool_timeout for a connection
        return Failure.UNAVAILABLE
    if _pooler_gave_up(error):
        return Failure.UNAVAILABLE
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return Failure.DISCONNECTED
    code = sqlstate(error)
    if code in _RETRYABLE_SQLSTATES:
        return Failure.RETRYABLE
    if code == "23505" and constraint_name(error) in _RETRY_ON_DUPLICATE:
        # Under REPEATABLE READ / SERIALIZABLE a request's snapshot can predate the commit of a concurrent
        # twin with the same Idempotency-Key; run again, it sees that record and replays it.
        return Failure.RETRYABLE
    if code is not None and code.startswith(_UNAVAILABLE_PREFIXES):
        return Failure.UNAVAILABLE
    orig = getattr(error, "orig", error)
    if isinstance(orig, sqlite3.Error):
        # SQLite's OperationalError also covers "no such table" and syntax errors: only a busy, locked or
        # unopenable database is "unavailable"; the rest are bugs.
        return Failure.UNAVAILABLE if _is_sqlite_unavailable(orig) else Failure.INTERNAL
    if isinstance(error, sa_exc.InterfaceError | sa_exc.OperationalError) or _is_connect_error(error):
        return Failure.UNAVAILABLE
    return Failure.INTERNAL


def unwrapped_driver_error(error: BaseException) -> bool:
    """A driver's own exception that SQLAlchemy did not wrap: raised by the engine's on-connect hooks (asyncpg's
    codecs) when the server closed the connection while it was being set up."""
    return isinstance(error, asyncpg.PostgresError | asyncpg.InterfaceError | sqlite3.Error)


def _pooler_gave_up(error: BaseException) -> bool:
    """PgBouncer closed the connection because it waited `query_wait_timeout` for a server connection: the
    database is busy, not a connection lost mid-unit. Run again, the unit would wait as long again, up to
    max_transaction_attempts times. Told apart by PgBouncer's message, which asyncpg passes on whether it
    read the error (08P01) or only saw the connection close after it (08003)."""
    code = sqlstate(error)
    orig = getattr(error, "orig", None)
    return code is not None and code.startswith("08") and "query_wait_timeout" in str(orig or error)


_SQLITE_UNAVAILABLE = ("locked", "busy", "unable to open", "disk i/o", "database or disk is full")


def _is_sqlite_unavailable(error: sqlite3.Error) -> bool:
    text = str(error).lower()
    return isinstance(error, sqlite3.OperationalError) and any(marker in text for marker in _SQLITE_UNAVAILABLE)


def _is_connect_error(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError | ConnectionError | TimeoutError):
            return True
        current = current.__cause__ or current.__context__
    return False
