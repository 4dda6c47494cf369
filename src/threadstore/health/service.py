"""What readiness asks of the database: the schema revision it is at."""

from __future__ import annotations

from threadstore.db import migrate
from threadstore.db.unit_of_work import Tx


async def schema_revision(tx: Tx) -> str | None:
    return await tx.conn.run_sync(migrate.current_revision)
