"""Schema migrations through Alembic, safe when several instances start at once.

PostgreSQL: a session-level advisory lock on a dedicated (unpooled) connection, taken by polling
(`_take_lock`), serializes migrators. It needs a session of its own, so it is taken straight on PostgreSQL,
never through a transaction pooler (the caller passes THREADSTORE_DIRECT_DATABASE_URL). Behind such a pooler
the migrator also writes the app's session defaults for its role (db/bounds.py).
SQLite: an exclusive file lock beside the database file does the same across processes.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import random
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import NullPool

from threadstore.db.bounds import UNBOUNDED, SessionDefaults, write_role_defaults

if TYPE_CHECKING:
    from threadstore.config import Settings

log = logging.getLogger("threadstore.migrate")

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_PG_LOCK_ID = 0x7468726561647374  # "threadst": any constant shared by every instance
_LOCK_POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Backfill:
    """How a revision that rewrites existing rows (0006) paces itself: batches of about `batch_messages`
    messages, each its own short transaction, `pause_ms` apart. None: the revision's default for the
    database. `on_batch` is called after each committed batch with the number committed so far (tests write
    through it as a previous version would, or interrupt the run)."""

    batch_messages: int | None = None
    pause_ms: int | None = None
    on_batch: Callable[[int], None] | None = None

    @classmethod
    def of(cls, settings: Settings) -> Backfill:
        return cls(settings.migration_batch_messages, settings.migration_batch_pause_ms)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(sync_conn: Connection) -> str | None:
    return MigrationContext.configure(sync_conn).get_current_revision()


def _upgrade(sync_conn: Connection, backfill: Backfill) -> None:
    config = alembic_config()
    config.attributes["connection"] = sync_conn
    config.attributes["backfill"] = backfill
    command.upgrade(config, "head")


async def upgrade(
    database_url: str, *, role_defaults: SessionDefaults | None = None, backfill: Backfill | None = None
) -> None:
    """`role_defaults` (PostgreSQL): also make these the session defaults of the role in the database.
    `backfill`: the pace of revisions that rewrite rows (the revisions' defaults when None)."""
    url = make_url(database_url)
    backfill = backfill or Backfill()
    if url.get_backend_name() == "sqlite":
        async with _file_lock(url.database):
            await _run_upgrade(database_url, backfill=backfill)
    else:
        await _run_upgrade(database_url, pg_lock=True, role_defaults=role_defaults, backfill=backfill)


async def _run_upgrade(
    database_url: str,
    *,
    pg_lock: bool = False,
    role_defaults: SessionDefaults | None = None,
    backfill: Backfill,
) -> None:
    connect_args = {"server_settings": UNBOUNDED} if pg_lock else {}
    engine = create_async_engine(database_url, poolclass=NullPool, connect_args=connect_args)
    try:
        if pg_lock:
            # The lock lives on its own autocommit connection, so Alembic keeps full control of the
            # migration's transaction on the other one.
            async with engine.connect() as lock_conn:
                await lock_conn.execution_options(isolation_level="AUTOCOMMIT")
                await _take_lock(lock_conn)
                try:
                    await _migrate_on_fresh_connection(engine, backfill)
                    if role_defaults is not None:
                        await write_role_defaults(lock_conn, role_defaults)
                finally:
                    await lock_conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": _PG_LOCK_ID})
        else:
            await _migrate_on_fresh_connection(engine, backfill)
    finally:
        await engine.dispose()
    log.info("schema is at revision %s", head_revision())


async def _take_lock(conn: AsyncConnection) -> None:
    """Waits for the migration lock by polling, never in pg_advisory_lock: a session blocked in a statement
    holds a snapshot, and CREATE INDEX CONCURRENTLY (0006) waits for every snapshot older than its own to
    end, while the holder waits for the index: a deadlock across sessions PostgreSQL cannot see. Between
    polls an autocommit session holds nothing."""
    while True:
        if (await conn.execute(text("SELECT pg_try_advisory_lock(:id)"), {"id": _PG_LOCK_ID})).scalar_one():
            return
        await asyncio.sleep(_LOCK_POLL_SECONDS * (0.5 + random.random()))


async def _migrate_on_fresh_connection(engine: AsyncEngine, backfill: Backfill) -> None:
    async with engine.connect() as conn:
        # env.py wraps the migrations in Alembic's own begin_transaction(), which commits them. A revision
        # may commit part of its work earlier through Alembic's autocommit block (0006's backfill): the lock
        # above is held all along, so no other migrator runs in between.
        await conn.run_sync(_upgrade, backfill)


@asynccontextmanager
async def _file_lock(database: str | None) -> AsyncIterator[None]:
    if not database or database == ":memory:":
        yield
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".migrate-lock"), "w") as handle:  # noqa: ASYNC230 (tiny, local, once)
        # Waiting happens in a worker thread so the event loop (and a peer in this process) keeps running.
        await asyncio.to_thread(fcntl.flock, handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run(database_url: str, *, role_defaults: SessionDefaults | None = None, backfill: Backfill | None = None) -> None:
    asyncio.run(upgrade(database_url, role_defaults=role_defaults, backfill=backfill))
