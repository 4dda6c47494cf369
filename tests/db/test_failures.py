"""The classifier that decides 503 vs retry vs 500. Driver exceptions are built as the drivers raise them."""

from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import exc as sa_exc

from threadstore.db.failures import Failure, classify


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("server said no")
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("sqlstate", "expected"),
    [
        ("40001", Failure.RETRYABLE),  # serialization_failure
        ("40P01", Failure.RETRYABLE),  # deadlock_detected
        ("55P03", Failure.UNAVAILABLE),  # lock_not_available (lock_timeout)
        ("57014", Failure.UNAVAILABLE),  # query_canceled (statement_timeout)
        ("57P01", Failure.UNAVAILABLE),  # admin_shutdown
        ("53300", Failure.UNAVAILABLE),  # too_many_connections
        ("08006", Failure.UNAVAILABLE),  # connection_failure
        ("23505", Failure.INTERNAL),  # unique_violation we did not expect
        ("P0001", Failure.INTERNAL),  # raise_exception (e.g. a failing trigger)
    ],
)
def test_postgres_errors_by_sqlstate(sqlstate: str, expected: Failure) -> None:
    error = sa_exc.DBAPIError("SELECT 1", {}, _PgError(sqlstate))
    assert classify(error) is expected


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("database is locked", Failure.UNAVAILABLE),
        ("unable to open database file", Failure.UNAVAILABLE),
        ("no such table: threads", Failure.INTERNAL),
        ('near "SELEC": syntax error', Failure.INTERNAL),
    ],
)
def test_sqlite_operational_errors_are_unavailable_only_when_the_database_is(message: str, expected: Failure) -> None:
    error = sa_exc.OperationalError("SELECT 1", {}, sqlite3.OperationalError(message))
    assert classify(error) is expected


def test_pool_timeout_is_unavailable() -> None:
    assert classify(sa_exc.TimeoutError("QueuePool limit reached")) is Failure.UNAVAILABLE


def test_invalidated_connection_is_disconnected() -> None:
    error = sa_exc.DBAPIError("SELECT 1", {}, ConnectionResetError(), connection_invalidated=True)
    assert classify(error) is Failure.DISCONNECTED
