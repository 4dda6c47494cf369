"""Engine construction: per-backend connection settings that bound every connection's behaviour."""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from threadstore.config import Settings
from threadstore.db.bounds import SessionDefaults
from threadstore.db.search_terms import sqlite_rank
from threadstore.ids import new_id

# Execution option set on write units; the SQLite engine's "begin" hook then takes the write lock up front.
WRITE_OPTION = "threadstore_write"


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def create_engine(
    settings: Settings, *, sqlite_connection: type[sqlite3.Connection] = sqlite3.Connection, url: str | None = None
) -> AsyncEngine:
    """`sqlite_connection`: the DBAPI connection class of a SQLite engine (the unit of work passes its own).
    `url`: another database than the configured one, reached the same way (e.g. a replica)."""
    parsed = make_url(url or settings.resolved_database_url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(settings, parsed.render_as_string(hide_password=False), sqlite_connection)
    return _postgres_engine(settings, parsed.render_as_string(hide_password=False))


def _postgres_engine(settings: Settings, url: str) -> AsyncEngine:
    through_pooler = settings.database_pool_mode == "transaction"
    server_settings = {"application_name": settings.application_name}  # PgBouncer tracks it per client
    if not through_pooler:
        server_settings.update(SessionDefaults.of(settings).parameters())  # else the role's: db/bounds.py
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
            **(_TRANSACTION_POOLER_STATEMENTS if through_pooler else {}),
        },
    )


def _unnamed() -> str:
    return ""


# Through a transaction pooler consecutive transactions (and, without BEGIN, consecutive statements) of one
# client connection run on different server sessions, so nothing may be prepared in one and used in another.
# SQLAlchemy's statement cache would reuse a statement prepared earlier; asyncpg names a statement it prepares
# (`__asyncpg_stmt_N__`, numbered per client connection, so two clients' names collide on one server session).
# Both caches off and every statement unnamed: the unnamed statement belongs to no later message, and asyncpg,
# its own cache off, parses it again in the same message sequence that binds and runs it (asyncpg#1058) —
# so a statement never depends on the server session it was described on. No statement is left behind on a
# server session either, as unique names would leave. Off the pooler SQLAlchemy's cache stays on: a cached
# statement saves a round trip per statement.
_TRANSACTION_POOLER_STATEMENTS: dict[str, Any] = {
    "prepared_statement_cache_size": 0,
    "statement_cache_size": 0,
    "prepared_statement_name_func": _unnamed,
}


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
        # A fork copies a path with new ids in one INSERT … SELECT (messages/tree_sql.py): the app's own ids.
        dbapi_connection.create_function("ts_new_id", 1, new_id)
        dbapi_connection.create_function("ts_search_rank", 2, sqlite_rank, deterministic=True)

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
