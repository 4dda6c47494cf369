"""Shared helpers of the branch-storage prototypes (issue 16 design study): databases, timing, data shapes.

Standalone: asyncpg for PostgreSQL, the standard library's sqlite3 for SQLite. Nothing here imports threadstore.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from typing import Any

import asyncpg

PG_ADMIN = os.environ.get("H16_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CONTENT = (
    "Could you explain how the planner chooses between an index scan and a sequential scan when "
    "the table is large and the predicate is selective? I would like concrete examples with "
    "numbers, and what I should look at in EXPLAIN output to understand the choice. "
) * 1


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(16)}"


# ---------------------------------------------------------------- PostgreSQL


async def pg_create(name: str) -> asyncpg.Connection:
    assert name.startswith("threadstore_h16_"), name
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    return await asyncpg.connect(PG_ADMIN.rsplit("/", 1)[0] + "/" + name)


def pg_dsn(name: str) -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + name


async def pg_drop(name: str) -> None:
    assert name.startswith("threadstore_h16_"), name
    admin = await asyncpg.connect(PG_ADMIN)
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.close()


_NAMED = re.compile(r"(?<![:\w]):([a-z_][a-z0-9_]*)")


def to_pg(sql: str) -> tuple[str, list[str]]:
    """`:name` parameters → `$n`, and the names in order (a name used twice is one parameter)."""
    names: list[str] = []

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    return _NAMED.sub(sub, sql), names


class PgStatement:
    """A statement written with `:name` parameters, prepared once on a connection."""

    def __init__(self, sql: str) -> None:
        self.sql, self.names = to_pg(sql)
        self._prepared: dict[int, Any] = {}

    async def _get(self, conn: asyncpg.Connection) -> Any:
        key = id(conn)
        if key not in self._prepared:
            self._prepared[key] = await conn.prepare(self.sql)
        return self._prepared[key]

    def args(self, params: dict[str, Any]) -> list[Any]:
        return [params.get(n) for n in self.names]

    async def fetch(self, conn: asyncpg.Connection, params: dict[str, Any]) -> list[asyncpg.Record]:
        if isinstance(conn, asyncpg.pool.PoolConnectionProxy):  # asyncpg caches it per connection
            return await conn.fetch(self.sql, *self.args(params))
        return await (await self._get(conn)).fetch(*self.args(params))

    async def fetchrow(self, conn: asyncpg.Connection, params: dict[str, Any]) -> asyncpg.Record | None:
        if isinstance(conn, asyncpg.pool.PoolConnectionProxy):
            return await conn.fetchrow(self.sql, *self.args(params))
        return await (await self._get(conn)).fetchrow(*self.args(params))

    async def explain(self, conn: asyncpg.Connection, params: dict[str, Any]) -> dict[str, Any]:
        """EXPLAIN (ANALYZE, BUFFERS) in a transaction that is rolled back (the statement may write)."""
        async with conn.transaction():
            plan = await conn.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {self.sql}", *self.args(params))
            raise _Rollback(plan)


class _Rollback(Exception):
    pass


async def explain(stmt: PgStatement, conn: asyncpg.Connection, params: dict[str, Any]) -> dict[str, Any]:
    try:
        await stmt.explain(conn, params)
    except _Rollback as done:
        plan = json.loads(done.args[0])[0] if isinstance(done.args[0], str) else done.args[0][0]
        top = plan["Plan"]
        return {
            "ms": plan["Execution Time"] + plan.get("Planning Time", 0.0),
            "exec_ms": plan["Execution Time"],
            "buffers": top.get("Shared Hit Blocks", 0) + top.get("Shared Read Blocks", 0),
            "rows": top.get("Actual Rows", 0),
        }
    raise AssertionError("unreachable")


async def pg_time(run: Callable[[], Any], reps: int, warm: int = 3) -> float:
    """Median wall ms of `await run()` (one round trip each, prepared)."""
    for _ in range(warm):
        await run()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        await run()
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


async def wal_bytes(conn: asyncpg.Connection, run: Callable[[], Any], reps: int) -> float:
    """Mean WAL bytes per run (the connection is otherwise idle; other databases' writes would add noise,
    so the minimum of three windows is kept)."""
    best = None
    for _ in range(3):
        start = await conn.fetchval("SELECT pg_current_wal_insert_lsn()")
        for _ in range(reps):
            await run()
        end = await conn.fetchval("SELECT pg_current_wal_insert_lsn()")
        got = await conn.fetchval("SELECT pg_wal_lsn_diff($1, $2)", end, start)
        best = float(got) if best is None else min(best, float(got))
    return best / reps


# ---------------------------------------------------------------- SQLite


@contextmanager
def sqlite_file(tag: str):
    folder = tempfile.mkdtemp(prefix=f"h16_{tag}_")
    path = os.path.join(folder, "t.db")
    conn = sqlite3.connect(path, isolation_level=None)
    for pragma in ("journal_mode=WAL", "synchronous=NORMAL", "foreign_keys=ON", "busy_timeout=10000"):
        conn.execute(f"PRAGMA {pragma}")
    conn.execute("PRAGMA cache_size=-65536")
    try:
        yield conn, path
    finally:
        conn.close()
        for name in os.listdir(folder):
            os.unlink(os.path.join(folder, name))
        os.rmdir(folder)


def sq_time(run: Callable[[], Any], reps: int, warm: int = 3) -> float:
    for _ in range(warm):
        run()
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        run()
        times.append(1e3 * (time.perf_counter() - start))
    return statistics.median(times)


def sqlite_sql(sql: str) -> str:
    """The PostgreSQL spelling of a few functions → SQLite's."""
    sql = sql.replace("greatest(", "max(").replace("least(", "min(")
    sql = re.sub(r"::(int|bigint|text|integer)\b", "", sql)
    return sql


# ---------------------------------------------------------------- output


def table(title: str, header: list[str], rows: Iterable[list[Any]]) -> str:
    out = [f"\n### {title}\n", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        out.append("| " + " | ".join(_fmt(v) for v in row) + " |")
    text = "\n".join(out)
    print(text, flush=True)
    return text


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if v < 10 else f"{v:.1f}"
    return str(v)
