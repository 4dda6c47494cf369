"""A fresh benchmark database, filled on the server side (INSERT … SELECT generate_series): seconds, not API calls.

threadstore's tables come from its own migrations; the yardstick's (`ys_*`) from its own seed script. Both
get the same shape of data: `users` users with `threads` threads of `messages` messages each, one thread of
`big` messages owned by user_1, and `deep_users` users with enough threads to page 50 pages deep.
"""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

BIG_THREAD_TS = "thr_big0000000000000000"
BIG_THREAD_YS = "big-000000000000"  # fixed by the yardstick's seed script
BIG_OWNER = "user_1"
DEEP_PAGE = 50
PAGE_SIZE = 20  # the API's default limit, used for every threads page measured
DEEP_THREADS = DEEP_PAGE * PAGE_SIZE + 20  # page 50 is full and still has a next page
TABLES = ("threads", "messages", "ys_threads", "ys_messages")  # threadstore's first


@dataclass(frozen=True)
class Shape:
    users: int
    threads: int
    messages: int
    big: int
    deep_users: int


@dataclass(frozen=True)
class Dsns:
    admin: str  # any database on the server: where CREATE/DROP DATABASE run
    bench: str  # plain postgresql:// DSN of the benchmark database
    name: str
    threadstore: str  # the benchmark database as threadstore's SQLAlchemy URL

    @classmethod
    def on_server(cls, database_url: str, name: str) -> Dsns:
        """The benchmark database `name` on the server of `database_url` (any database there)."""
        server = make_url(database_url).set(drivername="postgresql")
        bench = server.set(database=name)
        return cls(
            admin=server.render_as_string(hide_password=False),
            bench=bench.render_as_string(hide_password=False),
            name=name,
            threadstore=bench.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False),
        )


async def recreate_database(dsns: Dsns) -> None:
    conn = await asyncpg.connect(dsns.admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{dsns.name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{dsns.name}"')
    finally:
        await conn.close()


async def drop_database(dsns: Dsns) -> None:
    conn = await asyncpg.connect(dsns.admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{dsns.name}" WITH (FORCE)')
    finally:
        await conn.close()


def migrate_threadstore(
    threadstore_cli: Path, sqlalchemy_url: str, workdir: Path, settings: Mapping[str, str] | None = None
) -> None:
    """`settings`: more THREADSTORE_* variables (behind PgBouncer, the pool mode and direct URL: migrate then
    writes the role's defaults too)."""
    env = {**os.environ, "THREADSTORE_DATABASE_URL": sqlalchemy_url, "THREADSTORE_LOG_LEVEL": "WARNING"}
    env.update(settings or {})
    subprocess.run([str(threadstore_cli), "migrate"], check=True, env=env, cwd=workdir)


def seed_yardstick(yardstick_dir: Path, dsn: str, shape: Shape, workdir: Path) -> None:
    command = [
        sys.executable,
        str(yardstick_dir / "seed.py"),
        "--users", str(shape.users),
        "--threads", str(shape.threads),
        "--messages", str(shape.messages),
        "--big", str(shape.big),
        "--out", str(workdir / "ys-ids.txt"),
    ]  # fmt: skip
    env = {**os.environ, "YS_DSN": dsn, "PYTHONDONTWRITEBYTECODE": "1"}
    subprocess.run(command, check=True, env=env, cwd=workdir, stdout=subprocess.DEVNULL)


# Same sizes of text as the yardstick's rows, so both serialize comparable pages.
# Every thread is a line on its trunk (the branch its first messages are on), as threadstore writes one: the
# trunk's id drawn from the branches' sequence by the thread's insert, message seq n at depth n after seq n - 1,
# the last one current (docs/branches-design.md). Message ids are md5 of (thread, seq), so parents are computed.
_MESSAGE_ID = "'msg_' || substr(md5({thread} || '-' || {seq}), 1, 22)"
_TRUNK_ID = "nextval(pg_get_serial_sequence('branches', 'id'))"
_TS_THREADS = f"""
INSERT INTO threads (id, user_id, title, metadata, status, created_at, updated_at, archived_at, message_count,
                     last_message_at, version, current_message_id, current_branch_id, current_depth)
SELECT id, 'user_' || u, 'Thread ' || t, jsonb_build_object('n', t::text), 'active', stamp, stamp, NULL, $3::int,
       CASE WHEN $3::int > 0 THEN stamp END, $3::int + 1,
       CASE WHEN $3::int > 0 THEN {_MESSAGE_ID.format(thread="id", seq="$3::int")} END, {_TRUNK_ID}, $3::int
FROM generate_series(1, $1::int) u, generate_series(1, $2::int) t,
     LATERAL (SELECT now() - (u * $2::int + t) * interval '1 second' AS stamp,
                     'thr_' || substr(md5('t-' || u || '-' || t), 1, 22) AS id) s
"""
_TS_TRUNKS = """
INSERT INTO branches (id, thread_id, parent_branch_id, fork_depth, sibling_index, level)
SELECT current_branch_id, id, NULL, 0, 1, 0 FROM threads t
WHERE NOT EXISTS (SELECT 1 FROM branches b WHERE b.id = t.current_branch_id)
"""
_TS_MESSAGES = f"""
INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at, branch_id, depth, parent_id,
                      sibling_index)
SELECT {_MESSAGE_ID.format(thread="t.id", seq="k")}, t.id, k,
       CASE WHEN k % 2 = 1 THEN 'user' ELSE 'assistant' END, repeat('lorem ipsum dolor sit amet ', 4 + k % 8),
       '{{}}'::jsonb, t.created_at + k * interval '1 millisecond', t.current_branch_id, k,
       CASE WHEN k > 1 THEN {_MESSAGE_ID.format(thread="t.id", seq="k - 1")} END, 1
FROM threads t, generate_series(1, $1::int) k
WHERE t.user_id LIKE 'user\\_%'
"""
_TS_BIG_THREAD = f"""
INSERT INTO threads (id, user_id, title, metadata, status, created_at, updated_at, message_count, last_message_at,
                     version, current_message_id, current_branch_id, current_depth)
VALUES ($1::text, $2, 'big', '{{}}'::jsonb, 'active', now(), now(), $3::int, now(), $3::int + 1,
        CASE WHEN $3::int > 0 THEN {_MESSAGE_ID.format(thread="$1::text", seq="$3::int")} END, {_TRUNK_ID}, $3::int)
"""
_TS_BIG_MESSAGES = f"""
INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at, branch_id, depth, parent_id,
                      sibling_index)
SELECT {_MESSAGE_ID.format(thread="$1::text", seq="k")}, $1, k, 'user', repeat('lorem ipsum ', 8), '{{}}'::jsonb,
       now() - interval '1 day' + k * interval '1 millisecond', t.current_branch_id, k,
       CASE WHEN k > 1 THEN {_MESSAGE_ID.format(thread="$1::text", seq="k - 1")} END, 1
FROM threads t, generate_series(1, $2::int) k
WHERE t.id = $1
"""
_TS_DEEP_THREADS = f"""
INSERT INTO threads (id, user_id, title, metadata, status, created_at, updated_at, message_count, version,
                     current_branch_id)
SELECT 'thr_' || substr(md5('d-' || u || '-' || t), 1, 22), 'deep_' || u, 'Thread ' || t,
       jsonb_build_object('n', t::text), 'active', stamp, stamp, 0, 1, {_TRUNK_ID}
FROM generate_series(1, $1::int) u, generate_series(1, $2::int) t,
     LATERAL (SELECT now() - (u * $2::int + t) * interval '1 second' AS stamp) s
"""
_YS_DEEP_THREADS = """
INSERT INTO ys_threads (id, user_id, title, metadata, created_at, updated_at)
SELECT md5('d-' || u || '-' || t), 'deep_' || u, 'Thread ' || t, jsonb_build_object('n', t::text), stamp, stamp
FROM generate_series(1, $1::int) u, generate_series(1, $2::int) t,
     LATERAL (SELECT now() - (u * $2::int + t) * interval '1 second' AS stamp) s
"""


async def seed_threadstore_and_deep_users(dsn: str, shape: Shape, *, yardstick: bool = True) -> None:
    """`yardstick=False`: threadstore's tables only (the yardstick's are not there)."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute(_TS_THREADS, shape.users, shape.threads, shape.messages)
            await conn.execute(_TS_MESSAGES, shape.messages)
            await conn.execute(_TS_BIG_THREAD, BIG_THREAD_TS, BIG_OWNER, shape.big)
            await conn.execute(_TS_BIG_MESSAGES, BIG_THREAD_TS, shape.big)
            await conn.execute(_TS_DEEP_THREADS, shape.deep_users, DEEP_THREADS)
            await conn.execute(_TS_TRUNKS)
            if yardstick:
                await conn.execute(_YS_DEEP_THREADS, shape.deep_users, DEEP_THREADS)
        for table in (*TABLES, "branches") if yardstick else (*TABLES[:2], "branches"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()


@dataclass(frozen=True)
class Counts:
    ts_threads: int
    ts_messages: int
    ys_threads: int
    ys_messages: int


async def counts(dsn: str, *, yardstick: bool = True) -> Counts:
    conn = await asyncpg.connect(dsn)
    try:
        values = [await conn.fetchval(f"SELECT count(*) FROM {t}") for t in (TABLES if yardstick else TABLES[:2])]
    finally:
        await conn.close()
    return Counts(*values, *[0] * (len(TABLES) - len(values)))


async def thread_ids(dsn: str) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(user_id, thread_id) of every regular user's thread, for threadstore and for the yardstick."""
    return await _thread_ids(dsn, "threads", BIG_THREAD_TS), await _thread_ids(dsn, "ys_threads", BIG_THREAD_YS)


async def threadstore_thread_ids(dsn: str) -> list[tuple[str, str]]:
    return await _thread_ids(dsn, "threads", BIG_THREAD_TS)


async def _thread_ids(dsn: str, table: str, big_thread: str) -> list[tuple[str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch(
            f"SELECT user_id, id FROM {table} WHERE user_id LIKE 'user\\_%' AND id <> $1 ORDER BY id", big_thread
        )
    finally:
        await conn.close()
    return [(r["user_id"], r["id"]) for r in rows]


async def copy_csv(
    conn: asyncpg.Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[object]]
) -> None:
    """COPY rows as CSV: for columns asyncpg's binary COPY cannot encode (tsvector, given as its literal). None is
    NULL; every value is written with str()."""
    text = io.StringIO()
    csv.writer(text).writerows(rows)
    await conn.copy_to_table(table, source=io.BytesIO(text.getvalue().encode()), columns=list(columns), format="csv")
