"""Reads the database behind the server directly (outside the app) for the audits."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from scripts.torture import tree
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool


class Inspector:
    def __init__(self, database_url: str) -> None:
        self.engine = create_async_engine(database_url, poolclass=NullPool)

    async def dispose(self) -> None:
        await self.engine.dispose()

    async def rows(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        statement = text(sql)
        for name, value in params.items():
            if isinstance(value, list | tuple):
                statement = statement.bindparams(bindparam(name, expanding=True))
        async with self.engine.connect() as conn:
            result = await conn.execute(statement, params)
            return [dict(row._mapping) for row in result]

    async def scalar(self, sql: str, **params: Any) -> int:
        rows = await self.rows(sql, **params)
        return int(next(iter(rows[0].values())))

    async def orphan_messages(self) -> int:
        return await self.scalar(
            "SELECT count(*) FROM messages m LEFT JOIN threads t ON t.id = m.thread_id WHERE t.id IS NULL"
        )

    async def threads_of(self, users: Sequence[str]) -> list[dict[str, Any]]:
        if not users:
            return []
        rows = await self.rows(
            "SELECT id, user_id, title, metadata, status, message_count, version FROM threads WHERE user_id IN :users",
            users=list(users),
        )
        for row in rows:
            if isinstance(row["metadata"], str):  # SQLite keeps JSON as text
                row["metadata"] = json.loads(row["metadata"])
        return rows

    async def messages_of(self, thread_ids: Sequence[str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        ids = list(thread_ids)
        for start in range(0, len(ids), 500):
            found += await self.rows(
                "SELECT id, thread_id, seq, role, content, parent_id FROM messages WHERE thread_id IN :ids",
                ids=ids[start : start + 500],
            )
        return found

    async def tree_violations(self, thread_ids: Sequence[str]) -> list[str]:
        """The tree invariants (scripts/torture/tree.py) over these threads' rows as stored now."""
        ids = list(thread_ids)
        threads: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        branches: list[dict[str, Any]] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            threads += await self.rows(
                f"SELECT {', '.join(tree.THREAD_COLUMNS)} FROM threads WHERE id IN :ids", ids=chunk
            )
            messages += await self.rows(
                f"SELECT {', '.join(tree.MESSAGE_COLUMNS)} FROM messages WHERE thread_id IN :ids", ids=chunk
            )
            branches += await self.rows(
                f"SELECT {', '.join(tree.BRANCH_COLUMNS)} FROM branches WHERE thread_id IN :ids", ids=chunk
            )
        return tree.tree_violations(threads, messages, branches)
