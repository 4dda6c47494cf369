"""Engine construction: per-backend connection settings that bound every connection's behaviour."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from threadstore.config import Settings

# Execution option set on write units; the SQLite engine's "begin" hook then takes the write lock up front.
WRITE_OPTION = "threadstore_write"


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(
    settings: Settings, *, sqlite_connection: type[sqlite3.Connection] = sqlite3.Connection
) -> AsyncEngine:
    """`sqlite_connection`: the DBAPI connection class of a SQLite engine (the unit of work passes its own)."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(settings, url.render_as_string(hide_password=False), sqlite_connection)
    return _postgres_engine(settings, url.render_as_string(hide_password=False))


def _postgres_engine(settings: Settings, url: str) -> AsyncEngine:
    server_settings = {
        "application_name": settings.application_name,
        "statement_timeout": str(settings.statement_timeout_ms),
        "lock_timeout": str(settings.lock_timeout_ms),
        "idle_in_transaction_session_timeout": str(settings.idle_in_transaction_timeout_ms),
        "default_transaction_isolation": settings.isolation_level.lower(),
    }
    return create_async_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        pool_timeout=settings.pool_timeout,
        # A connection the server closed (idle timeout, restart, pg_terminate_backend) is found at checkout
        # and replaced, so one dead connection never becomes one failed request.
        pool_pre_ping=settings.pool_pre_ping,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={
            "server_settings": server_settings,
            "timeout": settings.connect_timeout,
            # Statements are cached by SQLAlchemy's compiled cache; asyncpg's own prepared-statement cache
            # stays on for speed (set THREADSTORE_DATABASE_URL ?prepared_statement_cache_size=0 for PgBouncer).
        },
    )


def _sqlite_engine(settings: Settings, url: str, connection: type[sqlite3.Connection]) -> AsyncEngine:
    engine = create_async_engine(
        url,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_max_overflow,
        pool_timeout=settings.pool_timeout,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        connect_args={"timeout": settings.sqlite_busy_timeout_ms / 1000, "factory": connection},
    )
    busy_timeout = settings.sqlite_busy_timeout_ms

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module, whose legacy mode does not BEGIN before
        # SELECT; the "begin" hook below issues real BEGINs (SQLAlchemy's documented pysqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        dbapi_connection.create_function("ts_casefold", 1, _casefold, deterministic=True)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Writers take the write lock at BEGIN: a deferred transaction that upgrades later fails with
        # "database is locked" instead of waiting out busy_timeout.
        immediate = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def _casefold(value: str | None) -> str | None:
    # SQLite's lower() folds ASCII only; titles are any language.
    return value.casefold() if isinstance(value, str) else value
