"""Reads the database behind the server directly (outside the app) for the audits."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from scripts.torture import replies, tree
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from threadstore.db import event_body

# A stand-in for the event row's time, which the checks never read (json_bytes needs one to rebuild a body).
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


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
                "SELECT id, thread_id, seq, role, content, parent_id, status FROM messages WHERE thread_id IN :ids",
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

    async def reply_violations(self, thread_ids: Sequence[str]) -> list[str]:
        """The streamed-reply invariants (scripts/torture/replies.py) over these threads' messages, their delta
        rows and their events as stored now."""
        ids = list(thread_ids)
        messages: list[dict[str, Any]] = []
        deltas: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        columns = ", ".join(f"m.{c}" for c in replies.MESSAGE_COLUMNS)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            messages += await self.rows(f"SELECT {columns} FROM messages m WHERE m.thread_id IN :ids", ids=chunk)
            deltas += await self.rows(
                "SELECT d.message_id, d.start, d.text FROM message_deltas d JOIN messages m ON m.id = d.message_id"
                " WHERE m.thread_id IN :ids",
                ids=chunk,
            )
            events += await self.rows(
                "SELECT id, type, message_id, body FROM events WHERE thread_id IN :ids AND message_id IS NOT NULL",
                ids=chunk,
            )
        return replies.reply_violations(messages, deltas, events)

    async def events_of_message(self, message_id: str, kind: str) -> list[dict[str, Any]]:
        """The events of one type about a message, in id order, each as its stored JSON object (without what the
        event row supplies) with `id`: its text inline (`message_id`) or joined from the message (`content_of`)."""
        rows = await self.rows(
            "SELECT id, body, member FROM events WHERE type = :kind AND (message_id = :m OR content_of = :m)"
            " ORDER BY id",
            kind=kind,
            m=message_id,
        )
        found = []
        for row in rows:
            data = orjson.loads(event_body.json_bytes(bytes(row["body"]), row["member"], None, "", _EPOCH))
            found.append({**data, "id": row["id"]})
        return found
