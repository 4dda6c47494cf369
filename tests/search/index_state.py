"""The search index as stored, read whole: what two states of it are compared by."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from threadstore.db.unit_of_work import Database

_COLUMNS = {
    "postgresql": [
        "SELECT 'message', id, search_terms::text FROM messages ORDER BY id",
        "SELECT 'thread', id, search_terms::text FROM threads ORDER BY id",
        "SELECT 'title', thread_id, search_terms::text FROM thread_search ORDER BY thread_id",
    ],
    "sqlite": [
        "SELECT 'message', id, search_terms FROM messages ORDER BY id",
        "SELECT 'thread', id, search_terms FROM threads ORDER BY id",
        "SELECT 'doc', thread_id, message_id, owner, terms FROM search_docs ORDER BY thread_id, message_id",
    ],
}


async def index_state(database: Database) -> list[tuple[Any, ...]]:
    """Every row's terms (SQLite: also the FTS table's content rows), after checking on SQLite that the FTS
    index holds exactly what its content table says."""
    async with database.engine.connect() as conn:
        if database.dialect == "sqlite":
            await conn.execute(text("INSERT INTO search_fts (search_fts, rank) VALUES ('integrity-check', 1)"))
        rows: list[tuple[Any, ...]] = []
        for sql in _COLUMNS[database.dialect]:
            rows += [tuple(r) for r in (await conn.execute(text(sql))).all()]
        await conn.rollback()
    return rows
