"""What readiness asks of the database: the schema revision it is at, and the session defaults it applies."""

from __future__ import annotations

from threadstore.db import bounds, migrate
from threadstore.db.bounds import SessionDefaults
from threadstore.db.unit_of_work import Tx


async def schema_revision(tx: Tx) -> str | None:
    return await tx.conn.run_sync(migrate.current_revision)


async def session_defaults(tx: Tx) -> SessionDefaults:
    return await bounds.applied(tx.conn)
