"""Candidate (a), branch segments: loads the test threads on PostgreSQL and SQLite, checks every statement's
answer against the in-memory model, and prints what each costs.

    .venv/bin/python bench/branches/segments.py [--pg-only | --sqlite-only] [--reps N]

Threads: `lin` 100,000 messages in one line; `deep` a 100,000-message active path made of 1,000 segments
(an edit every 100 messages, the old reply kept); `bushy` the same with an edit every 10 messages (a
10,000-message path, 1,000 segments); `wide` one message with 1,000 regenerated answers; `small` 10
messages. The v1 tables hold `lin` and `small` as today, for the baseline. About a minute per database.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import model
import segments_sql as S
from common import (
    PgStatement,
    explain,
    new_id,
    pg_create,
    pg_drop,
    pg_time,
    sq_time,
    sqlite_file,
    sqlite_sql,
    table,
    wal_bytes,
)

DB = "threadstore_h16_seg"
LIMIT = 50
BODY = b"\x01" + b"x" * 90  # an event body of the usual compact size


def build() -> dict[str, model.Thread]:
    return {
        "lin": model.linear(100_000),
        "deep": model.edited(1_000, 100),
        "bushy": model.edited(1_000, 10),
        "wide": model.wide(1_000),
        "small": model.linear(10),
    }


def page_points(t: model.Thread) -> list[tuple[str, str, dict[str, Any], list[str]]]:
    """(label, order, params, expected ids) at the first, middle and last page of the active path."""
    path = model.path_of(t, t.current)
    n = len(path)
    leaf = t.current
    out = []
    for where, after in (("first", 0), ("middle", n // 2), ("last", n - LIMIT)):
        params = {
            "sb": None if after == 0 else leaf.branch_id,
            "after": after,
            "leaf_depth": None if after == 0 else leaf.depth,
        }
        out.append((where, "asc", params, [m.id for m in path[after : after + LIMIT]]))
    for where, before in (("first", None), ("middle", n // 2 + 1), ("last", LIMIT + 1)):
        if before is None:
            params = {"sb": None, "before": None}
            expected = [m.id for m in path[::-1][:LIMIT]]
        else:
            cursor_row = path[before - 1]
            params = {"sb": cursor_row.branch_id, "before": before}
            expected = [m.id for m in path[before - 1 - LIMIT : before - 1][::-1]]
        out.append((where, "desc", params, expected))
    return out


def sibling_count(t: model.Thread, m: model.Message) -> int:
    return sum(1 for x in t.messages if x.parent_id == m.parent_id)


def expected_counts(t: model.Thread, ids: list[str]) -> list[int]:
    by_parent: dict[str | None, int] = {}
    for x in t.messages:
        by_parent[x.parent_id] = by_parent.get(x.parent_id, 0) + 1
    return [by_parent[t.by_id[i].parent_id] for i in ids]


# ============================================================================================ PostgreSQL


async def pg_load_thread(conn, t: model.Thread) -> dict:
    """One thread's rows in the segments schema (threads, branches, messages); returns model.rows(t)."""
    r = model.rows(t)
    last = t.messages[-1].created_at
    await conn.copy_records_to_table(
        "threads",
        records=[(*row, last) for row in r["thread"]],
        columns=[
            "id",
            "user_id",
            "message_count",
            "current_message_id",
            "current_branch_id",
            "current_depth",
            "last_message_at",
        ],
    )
    await conn.copy_records_to_table(
        "branches",
        records=r["branches"],
        columns=[
            "id",
            "thread_id",
            "parent_branch_id",
            "fork_depth",
            "sibling_index",
            "level",
            "jump_id",
            "jump_level",
            "jump_fork_depth",
        ],
    )
    await conn.copy_records_to_table(
        "messages",
        records=[row[:10] for row in r["messages"]],
        columns=[
            "id",
            "thread_id",
            "seq",
            "role",
            "content",
            "created_at",
            "branch_id",
            "depth",
            "parent_id",
            "sibling_index",
        ],
    )
    return r


async def pg_load(conn, threads: dict[str, model.Thread]) -> None:
    await conn.execute(S.SCHEMA_PG)
    for name, t in threads.items():
        r = await pg_load_thread(conn, t)
        last = t.messages[-1].created_at
        if name in ("lin", "small"):
            await conn.copy_records_to_table(
                "threads_v1",
                records=[(t.id, t.user_id, t.seq, last)],
                columns=["id", "user_id", "message_count", "last_message_at"],
            )
            await conn.copy_records_to_table(
                "messages_v1",
                records=[row[:6] for row in r["messages"]],
                columns=["id", "thread_id", "seq", "role", "content", "created_at"],
            )
    await conn.execute("SELECT setval(pg_get_serial_sequence('branches', 'id'), (SELECT max(id) FROM branches))")
    await conn.execute("VACUUM ANALYZE")


async def pg_pages(conn, threads, reps) -> list[list[Any]]:
    stmts = {(o, c): PgStatement(S.page_sql(o, c)) for o in ("asc", "desc") for c in (True, False)}
    v1 = {o: PgStatement(S.V1_PAGE[o]) for o in ("asc", "desc")}
    out = []
    for name in ("lin", "deep", "bushy"):
        t = threads[name]
        for where, order, params, expected in page_points(t):
            base = {
                "thread": t.id,
                "user": t.user_id,
                "lim": LIMIT,
                "after": 0,
                "before": None,
                "sb": None,
                "leaf_depth": None,
            } | params
            got = await stmts[(order, True)].fetch(conn, base)
            assert [r["id"] for r in got] == expected, (name, where, order, len(got), len(expected))
            assert [r["sibling_count"] for r in got] == expected_counts(t, expected), (name, where, order)
            ms = await pg_time(lambda: stmts[(order, True)].fetch(conn, base), reps)
            ms_nc = await pg_time(lambda: stmts[(order, False)].fetch(conn, base), reps)
            plan = await explain(stmts[(order, True)], conn, base)
            row = [f"{name} {order} {where}", ms, ms_nc, plan["buffers"], plan["exec_ms"]]
            if name == "lin":
                vp = {
                    "thread": t.id,
                    "user": t.user_id,
                    "lim": LIMIT,
                    "after": params.get("after", 0),
                    "before": params.get("before") or 10**9,
                }
                got1 = await v1[order].fetch(conn, vp)
                assert [r["id"] for r in got1] == expected
                row += [
                    await pg_time(lambda: v1[order].fetch(conn, vp), reps),
                    (await explain(v1[order], conn, vp))["buffers"],
                ]
            else:
                row += ["", ""]
            out.append(row)
    return out


async def pg_forged_cursor(conn, threads) -> None:
    """A cursor naming another thread's branch lists nothing (the page statement checks the branch's thread)."""
    stmt = PgStatement(S.page_sql("asc", True))
    victim, mine = threads["deep"], threads["small"]
    params = {
        "thread": mine.id,
        "user": mine.user_id,
        "lim": LIMIT,
        "after": 0,
        "before": None,
        "sb": victim.current.branch_id,
        "leaf_depth": victim.current.depth,
    }
    assert await stmt.fetch(conn, params) == [], "a forged cursor read another thread"


async def pg_siblings(conn, threads, reps) -> list[list[Any]]:
    stmt = PgStatement(S.SIBLINGS["asc"])
    t = threads["wide"]
    kids = sorted((m for m in t.messages if m.parent_id), key=lambda m: m.sibling_index)
    out = []
    for where, after in (("first", 0), ("middle", 500), ("last", 1000 - LIMIT)):
        params = {"thread": t.id, "user": t.user_id, "mid": kids[0].id, "after": after, "lim": LIMIT}
        got = await stmt.fetch(conn, params)
        assert [r["id"] for r in got] == [m.id for m in kids[after : after + LIMIT]], where
        assert all(r["sibling_count"] == 1000 for r in got)
        plan = await explain(stmt, conn, params)
        out.append(
            [
                f"wide siblings_of {where}",
                await pg_time(lambda: stmt.fetch(conn, params), reps),
                plan["buffers"],
                plan["exec_ms"],
            ]
        )
    return out


async def pg_descend(conn, threads, reps) -> list[list[Any]]:
    stmt = PgStatement(S.DESCEND_PG)
    out = []
    deep = threads["deep"]
    path = model.path_of(deep, deep.current)
    cases = [
        ("deep: from the root (1,000 segments below)", deep, path[0]),
        ("deep: from the middle (500 below)", deep, path[50_000]),
        ("deep: from the last segment", deep, path[-60]),
        ("lin: from the root", threads["lin"], threads["lin"].messages[0]),
    ]
    wide = threads["wide"]
    cases.append(("wide: to a sibling (a leaf)", wide, wide.messages[500]))
    for label, t, start in cases:
        params = {"thread": t.id, "mid": start.id}
        got = await stmt.fetchrow(conn, params)
        assert got["id"] == expected_descent(t, start).id, label
        plan = await explain(stmt, conn, params)
        out.append([label, got["hops"], await pg_time(lambda: stmt.fetchrow(conn, params), reps), plan["buffers"]])
    return out


def expected_descent(t: model.Thread, m: model.Message) -> model.Message:
    children: dict[str, list[model.Message]] = {}
    for x in t.messages:
        if x.parent_id:
            children.setdefault(x.parent_id, []).append(x)
    while children.get(m.id):
        m = max(children[m.id], key=lambda x: x.sibling_index)
    return m


async def pg_autorename(conn, threads, reps) -> list[list[Any]]:
    stmt = PgStatement(S.autorename_sql())
    out = []
    for name in ("lin", "deep", "bushy", "wide"):
        t = threads[name]
        params = {"thread": t.id, "user": t.user_id, "lim": 200, "after": 0, "sb": None, "leaf_depth": None}
        got = await stmt.fetchrow(conn, params)
        assert got["id"] == next(m for m in model.path_of(t, t.current) if m.role == "user").id
        plan = await explain(stmt, conn, params)
        out.append(
            [f"auto-rename source, {name}", await pg_time(lambda: stmt.fetchrow(conn, params), reps), plan["buffers"]]
        )
    return out


async def pg_appends(conn, threads, reps) -> list[list[Any]]:
    now = datetime.now(UTC)
    append = PgStatement(S.APPEND_PG)
    v1 = PgStatement(S.V1_APPEND_PG)
    lock = PgStatement(S.LOCK_PG)
    child = PgStatement(S.CHILD_PG["message"])
    out = []

    def plain(stmt, t):
        async def run():
            row = await stmt.fetchrow(
                conn,
                {
                    "thread": t.id,
                    "user": t.user_id,
                    "id": new_id("msg"),
                    "role": "user",
                    "content": model.CONTENT,
                    "now": now,
                    "body": BODY,
                },
            )
            assert row is not None

        return run

    def regenerate(t, parent_id):
        async def run():
            async with conn.transaction():
                await lock.fetchrow(conn, {"thread": t.id, "user": t.user_id})
                row = await child.fetchrow(
                    conn,
                    {
                        "thread": t.id,
                        "user": t.user_id,
                        "id": new_id("msg"),
                        "parent": parent_id,
                        "role": "assistant",
                        "content": model.CONTENT,
                        "now": now,
                        "body": BODY,
                    },
                )
                assert row is not None

        return run

    for label, t, is_v1 in (
        ("small (10)", threads["small"], False),
        ("lin (100,000)", threads["lin"], False),
        ("deep (100,999; 1,000 segments)", threads["deep"], False),
        ("small (10)", threads["small"], True),
        ("lin (100,000)", threads["lin"], True),
    ):
        run = plain(v1 if is_v1 else append, t)
        ms = await pg_time(run, reps)
        wal = await wal_bytes(conn, run, 50)
        out.append([("v1 append " if is_v1 else "append, no parent_id ") + label, ms, wal])
    # A chain check after the plain appends: each one's parent is the previous one.
    rows = await conn.fetch(
        "SELECT id, parent_id, depth, sibling_index FROM messages WHERE thread_id = $1 ORDER BY seq",
        threads["small"].id,
    )
    for a, b in itertools.pairwise(rows):
        assert b["parent_id"] == a["id"] and b["depth"] == a["depth"] + 1 and b["sibling_index"] == 1
    one = PgStatement(S.CHILD_ONE_PG["message"])

    def regenerate_one(t, parent_id):
        async def run():
            row = await one.fetchrow(
                conn,
                {
                    "thread": t.id,
                    "user": t.user_id,
                    "id": new_id("msg"),
                    "parent": parent_id,
                    "role": "assistant",
                    "content": model.CONTENT,
                    "now": now,
                    "body": BODY,
                },
            )
            assert row is not None and row["new_branches"] == 1

        return run

    for label, t in (("small (10)", threads["small"]), ("deep (100,999)", threads["deep"])):
        parent = await conn.fetchval(
            "SELECT parent_id FROM messages WHERE id = (SELECT current_message_id FROM threads WHERE id = $1)", t.id
        )
        for how, make in (("LOCK + CHILD transaction", regenerate), ("one statement, version-checked", regenerate_one)):
            run = make(t, parent)
            ms = await pg_time(run, reps)
            wal = await wal_bytes(conn, run, 50)
            out.append([f"append with parent_id (new sibling), {how}, {label}", ms, wal])
    # What the row lock of `cur` costs in WAL: v1's append with the same FOR UPDATE in front.
    locked_v1 = PgStatement(
        S.V1_APPEND_PG.replace(
            "WITH b AS (UPDATE threads_v1 SET",
            "WITH l AS (SELECT id FROM threads_v1 WHERE id = :thread FOR UPDATE), b AS (UPDATE threads_v1 SET",
        ).replace(
            "WHERE id = :thread AND user_id = :user AND status = 'active' RETURNING message_count AS seq",
            "WHERE id = (SELECT id FROM l) AND user_id = :user AND status = 'active' RETURNING message_count AS seq",
        )
    )
    run = plain(locked_v1, threads["lin"])
    out.append(
        [
            "(experiment) v1 append + FOR UPDATE of the thread, lin",
            await pg_time(run, reps),
            await wal_bytes(conn, run, 50),
        ]
    )
    # the siblings made above: indexes 2, 3, … gapless after the first child
    idx = [
        r[0]
        for r in await conn.fetch(
            "SELECT sibling_index FROM messages WHERE parent_id = (SELECT parent_id FROM messages WHERE id = (SELECT current_message_id FROM threads WHERE id = $1)) ORDER BY sibling_index",
            threads["deep"].id,
        )
    ]
    assert idx == list(range(1, len(idx) + 1)), idx[:10]
    return out


async def pg_heavy(conn, threads) -> list[list[Any]]:
    """Delete (a subtree) and fork, each in a transaction rolled back, so the data stays."""
    delete = PgStatement(S.DELETE_PG)
    fork = PgStatement(S.FORK_PG)
    deep = threads["deep"]
    path = model.path_of(deep, deep.current)
    out = []
    target = PgStatement(S.DELETE_TARGET_PG)
    for label, m in (
        ("delete the leaf", path[-1]),
        ("delete the last segment's start (100 msgs)", path[-100]),
        ("delete at depth 50,001 (~50,500 msgs, 500 branches)", path[50_000]),
    ):
        params = dict(await target.fetchrow(conn, {"thread": deep.id, "mid": m.id}))
        plan = await explain(delete, conn, params)
        try:
            async with conn.transaction():
                deleted = await delete.fetchrow(conn, params)
                raise RuntimeError
        except RuntimeError:
            pass
        if os.environ.get("H16_PLANS"):
            try:
                async with conn.transaction():
                    text = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + delete.sql, *delete.args(params))
                    print("\n".join(r[0] for r in text))
                    raise RuntimeError
            except RuntimeError:
                pass
        out.append(
            [label, plan["ms"], plan["buffers"], f"{deleted['messages']} messages, {deleted['branches']} branches"]
        )
    for label, m in (
        ("fork a 1,000-message path", path[999]),
        ("fork the 100,000-message path", path[-1]),
        (
            "fork a 10,000-message path (bushy, 1,000 segments)",
            model.path_of(threads["bushy"], threads["bushy"].current)[-1],
        ),
    ):
        t = deep if m.thread_id == deep.id else threads["bushy"]
        plan = await explain(fork, conn, {"thread": t.id, "user": t.user_id, "mid": m.id, "new_thread": new_id("thr")})
        out.append([label, plan["ms"], plan["buffers"], m.depth])
    return out


async def pg_main(threads, reps) -> list[str]:
    conn = await pg_create(DB)
    try:
        await conn.execute("SET jit = off")
        start = time.perf_counter()
        await pg_load(conn, threads)
        print(f"PostgreSQL: loaded in {time.perf_counter() - start:.1f} s", flush=True)
        out = [
            table(
                "(a) segments, PostgreSQL: a page of 50 of the active path",
                ["page", "ms", "ms w/o sibling_count", "buffers", "server ms", "v1 ms", "v1 buffers"],
                await pg_pages(conn, threads, reps),
            )
        ]
        await pg_forged_cursor(conn, threads)
        out.append(
            table(
                "(a) segments, PostgreSQL: siblings_of the 1,000-sibling message (page of 50)",
                ["page", "ms", "buffers", "server ms"],
                await pg_siblings(conn, threads, reps),
            )
        )
        out.append(
            table(
                "(a) segments, PostgreSQL: PATCH current_message_id, descent to the newest leaf",
                ["from", "branch hops", "ms", "buffers"],
                await pg_descend(conn, threads, reps),
            )
        )
        out.append(
            table(
                "(a) segments, PostgreSQL: auto-rename source (first user message of the active path)",
                ["thread", "ms", "buffers"],
                await pg_autorename(conn, threads, reps),
            )
        )
        out.append(
            table(
                "(a) segments, PostgreSQL: delete and fork (EXPLAIN ANALYZE, rolled back)",
                ["operation", "ms", "buffers", "rows"],
                await pg_heavy(conn, threads),
            )
        )
        out.append(
            table(
                "(a) segments, PostgreSQL: appends (commit each)",
                ["append", "ms", "WAL bytes"],
                await pg_appends(conn, threads, reps),
            )
        )
        sizes = await conn.fetch("""SELECT relname, pg_size_pretty(pg_relation_size(oid)) AS size FROM pg_class
                                    WHERE relname IN ('messages', 'messages_v1', 'uq_messages_branch_depth', 'uq_messages_thread_seq',
                                    'messages_pkey', 'branches', 'ix_branches_forks', 'ix_branches_thread') ORDER BY relname""")
        out.append(table("(a) segments, PostgreSQL: sizes", ["relation", "size"], [[r[0], r[1]] for r in sizes]))
        return out
    finally:
        await conn.close()
        await pg_drop(DB)


# ============================================================================================ SQLite


def sq_load(conn: sqlite3.Connection, threads) -> None:
    conn.executescript(S.SCHEMA_SQLITE)
    conn.execute("BEGIN")
    for name, t in threads.items():
        r = model.rows(t)
        last = t.messages[-1].created_at.replace(tzinfo=None)
        conn.executemany(
            "INSERT INTO threads (id, user_id, message_count, current_message_id, current_branch_id, current_depth, last_message_at) VALUES (?,?,?,?,?,?,?)",
            [(*row, last) for row in r["thread"]],
        )
        conn.executemany("INSERT INTO branches VALUES (?,?,?,?,?,?,?,?,?)", r["branches"])
        conn.executemany(
            "INSERT INTO messages (id, thread_id, seq, role, content, created_at, branch_id, depth, parent_id, sibling_index) VALUES (?,?,?,?,?,?,?,?,?,?)",
            [(*row[:5], row[5].replace(tzinfo=None), *row[6:10]) for row in r["messages"]],
        )
        if name in ("lin", "small"):
            conn.execute(
                "INSERT INTO threads_v1 (id, user_id, message_count, last_message_at) VALUES (?,?,?,?)",
                (t.id, t.user_id, t.seq, last),
            )
            conn.executemany(
                "INSERT INTO messages_v1 (id, thread_id, seq, role, content, created_at) VALUES (?,?,?,?,?,?)",
                [(*row[:5], row[5].replace(tzinfo=None)) for row in r["messages"]],
            )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")


def sq_pages(conn, threads, reps):
    stmts = {(o, c): S.page_sql(o, c, "sqlite") for o in ("asc", "desc") for c in (True, False)}
    v1 = {o: sqlite_sql(S.V1_PAGE[o]) for o in ("asc", "desc")}
    out = []
    for name in ("lin", "deep", "bushy"):
        t = threads[name]
        for where, order, params, expected in page_points(t):
            base = {
                "thread": t.id,
                "user": t.user_id,
                "lim": LIMIT,
                "after": 0,
                "before": None,
                "sb": None,
                "leaf_depth": None,
            } | params
            q = stmts[(order, True)]
            got = conn.execute(q, base).fetchall()
            assert [r[0] for r in got] == expected, (name, where, order, len(got))
            assert [r[-1] for r in got] == expected_counts(t, expected)
            ms = sq_time(lambda: conn.execute(q, base).fetchall(), reps)
            ms_nc = sq_time(lambda: conn.execute(stmts[(order, False)], base).fetchall(), reps)
            row = [f"{name} {order} {where}", ms, ms_nc]
            if name == "lin":
                vp = {
                    "thread": t.id,
                    "user": t.user_id,
                    "lim": LIMIT,
                    "after": params.get("after", 0),
                    "before": params.get("before") or 10**9,
                }
                assert [r[0] for r in conn.execute(v1[order], vp).fetchall()] == expected
                row.append(sq_time(lambda: conn.execute(v1[order], vp).fetchall(), reps))
            else:
                row.append("")
            out.append(row)
    victim, mine = threads["deep"], threads["small"]
    forged = {
        "thread": mine.id,
        "user": mine.user_id,
        "lim": LIMIT,
        "after": 0,
        "before": None,
        "sb": victim.current.branch_id,
        "leaf_depth": victim.current.depth,
    }
    assert conn.execute(stmts[("asc", True)], forged).fetchall() == [], "a forged cursor read another thread"
    t = threads["wide"]
    kids = sorted((m for m in t.messages if m.parent_id), key=lambda m: m.sibling_index)
    q = sqlite_sql(S.SIBLINGS["asc"])
    for where, after in (("first", 0), ("middle", 500), ("last", 1000 - LIMIT)):
        params = {"thread": t.id, "user": t.user_id, "mid": kids[0].id, "after": after, "lim": LIMIT}
        got = conn.execute(q, params).fetchall()
        assert [r[0] for r in got] == [m.id for m in kids[after : after + LIMIT]]
        out.append([f"wide siblings_of {where}", sq_time(lambda: conn.execute(q, params).fetchall(), reps), "", ""])
    return out


def sq_descend(conn, threads, reps):
    out = []
    q = S.autorename_sql("sqlite")
    for name in ("lin", "deep", "bushy", "wide"):
        t = threads[name]
        params = {
            "thread": t.id,
            "user": t.user_id,
            "lim": 200,
            "after": 0,
            "sb": None,
            "leaf_depth": None,
            "before": None,
        }
        got = conn.execute(q, params).fetchone()
        assert got[0] == next(m for m in model.path_of(t, t.current) if m.role == "user").id
        out.append([f"auto-rename source, {name}", "", sq_time(lambda: conn.execute(q, params).fetchone(), reps)])
    deep = threads["deep"]
    path = model.path_of(deep, deep.current)
    wide = threads["wide"]
    for label, t, start in (
        ("deep: from the root (1,000 segments below)", deep, path[0]),
        ("deep: from the middle (500 below)", deep, path[50_000]),
        ("deep: from the last segment", deep, path[-60]),
        ("lin: from the root", threads["lin"], threads["lin"].messages[0]),
        ("wide: to a sibling (a leaf)", wide, wide.messages[500]),
    ):
        params = {"thread": t.id, "mid": start.id}
        got = conn.execute(S.DESCEND_SQLITE, params).fetchone()
        assert got[0] == expected_descent(t, start).id, label
        out.append([label, got[3], sq_time(lambda: conn.execute(S.DESCEND_SQLITE, params).fetchone(), reps)])
    return out


SQ_BUMP = """message_count = message_count + 1, version = version + 1, updated_at = max(updated_at, :now),
             last_message_at = max(coalesce(last_message_at, :now), :now)"""


def sq_append(conn, t_id, user, now) -> int:
    """Append without parent_id, SQLite: one BEGIN IMMEDIATE transaction (the database's write lock)."""
    mid = new_id("msg")
    conn.execute("BEGIN IMMEDIATE")
    parent = conn.execute(
        "SELECT current_message_id FROM threads WHERE id = ? AND user_id = ? AND status = 'active'", (t_id, user)
    ).fetchone()
    seq, branch, depth = conn.execute(
        f"UPDATE threads SET {SQ_BUMP}, current_message_id = :id, current_depth = current_depth + 1 WHERE id = :thread "
        "RETURNING message_count, current_branch_id, current_depth",
        {"now": now, "id": mid, "thread": t_id},
    ).fetchone()
    conn.execute(
        "INSERT INTO messages (id, thread_id, seq, role, content, created_at, branch_id, depth, parent_id, sibling_index)"
        " VALUES (?,?,?,?,?,?,?,?,?,1)",
        (mid, t_id, seq, "user", model.CONTENT, now, branch, depth, parent[0]),
    )
    conn.execute(
        "INSERT INTO events (user_id, thread_id, type, body, member, content_of, created_at) VALUES (?,?,?,?,?,?,?)",
        (user, t_id, "message.created", BODY, f'"seq":{seq}', mid, now),
    )
    conn.execute("COMMIT")
    return seq


def sq_append_v1(conn, t_id, user, now) -> int:
    mid = new_id("msg")
    conn.execute("BEGIN IMMEDIATE")
    seq = conn.execute(
        f"UPDATE threads_v1 SET {SQ_BUMP} WHERE id = :thread AND user_id = :user AND status = 'active' RETURNING message_count",
        {"now": now, "thread": t_id, "user": user},
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO messages_v1 (id, thread_id, seq, role, content, created_at) VALUES (?,?,?,?,?,?)",
        (mid, t_id, seq, "user", model.CONTENT, now),
    )
    conn.execute(
        "INSERT INTO events (user_id, thread_id, type, body, member, content_of, created_at) VALUES (?,?,?,?,?,?,?)",
        (user, t_id, "message.created", BODY, f'"seq":{seq}', mid, now),
    )
    conn.execute("COMMIT")
    return seq


def sq_child(conn, t_id, user, parent_id, now) -> tuple[int, int]:
    """Append with parent_id, SQLite: the same steps as CHILD_PG, one statement each, in one transaction."""
    mid = new_id("msg")
    conn.execute("BEGIN IMMEDIATE")
    pb, f = conn.execute(
        "SELECT branch_id, depth FROM messages WHERE id = ? AND thread_id = ?", (parent_id, t_id)
    ).fetchone()
    cont, forks, level, fork_depth, jump_level, jj_id, jj_level, jj_fork = conn.execute(
        """SELECT (SELECT sibling_index FROM messages WHERE branch_id = :pb AND depth = :f + 1),
                  (SELECT max(sibling_index) FROM branches WHERE parent_branch_id = :pb AND fork_depth = :f),
                  b.level, b.fork_depth, b.jump_level, j.jump_id, j.jump_level, j.jump_fork_depth
           FROM branches b LEFT JOIN branches j ON j.id = b.jump_id WHERE b.id = :pb""",
        {"pb": pb, "f": f},
    ).fetchone()
    index = max(cont or 0, forks or 0) + 1
    branch = pb
    if cont is not None:
        if jj_id is not None and level - jump_level == jump_level - jj_level:
            jump = (jj_id, jj_level, jj_fork)
        else:
            jump = (pb, level, fork_depth)
        branch = conn.execute(
            "INSERT INTO branches (thread_id, parent_branch_id, fork_depth, sibling_index, level, jump_id, jump_level, jump_fork_depth)"
            " VALUES (?,?,?,?,?,?,?,?) RETURNING id",
            (t_id, pb, f, index, level + 1, *jump),
        ).fetchone()[0]
    seq = conn.execute(
        f"UPDATE threads SET {SQ_BUMP}, current_message_id = :id, current_branch_id = :b, current_depth = :d "
        "WHERE id = :thread AND user_id = :user AND status = 'active' RETURNING message_count",
        {"now": now, "id": mid, "b": branch, "d": f + 1, "thread": t_id, "user": user},
    ).fetchone()[0]
    conn.execute(
        "INSERT INTO messages (id, thread_id, seq, role, content, created_at, branch_id, depth, parent_id, sibling_index)"
        " VALUES (?,?,?,?,?,?,?,?,?,?)",
        (mid, t_id, seq, "assistant", model.CONTENT, now, branch, f + 1, parent_id, index),
    )
    conn.execute(
        "INSERT INTO events (user_id, thread_id, type, body, member, content_of, created_at) VALUES (?,?,?,?,?,?,?)",
        (user, t_id, "message.created", BODY, f'"seq":{seq}', mid, now),
    )
    conn.execute("COMMIT")
    return seq, index


SQ_DELETE = [
    # messages of the branch from the depth on, and of every branch started below (recursively)
    """DELETE FROM messages WHERE branch_id IN (
         WITH RECURSIVE doomed(id) AS (
             SELECT id FROM branches WHERE parent_branch_id = :b AND fork_depth >= :d
             UNION ALL SELECT f.id FROM doomed JOIN branches f ON f.parent_branch_id = doomed.id)
         SELECT id FROM doomed)""",
    "DELETE FROM messages WHERE branch_id = :b AND depth >= :d",
    """DELETE FROM branches WHERE id IN (
         WITH RECURSIVE doomed(id) AS (
             SELECT id FROM branches WHERE parent_branch_id = :b AND fork_depth >= :d
             UNION ALL SELECT f.id FROM doomed JOIN branches f ON f.parent_branch_id = doomed.id)
         SELECT id FROM doomed)
       OR (id = :b AND :d = :fork_depth + 1 AND :parent_branch IS NOT NULL)""",
]

SQ_FORK_PATH = """
WITH RECURSIVE seg(id, parent_branch_id, fork_depth, hi) AS (
    SELECT b.id, b.parent_branch_id, b.fork_depth, m.depth FROM messages m JOIN branches b ON b.id = m.branch_id
    WHERE m.id = :mid AND m.thread_id = :thread
    UNION ALL
    SELECT b.id, b.parent_branch_id, b.fork_depth, seg.fork_depth FROM seg JOIN branches b ON b.id = seg.parent_branch_id
)
SELECT m.depth, m.role, m.content, m.metadata, m.created_at
FROM seg JOIN messages m ON m.branch_id = seg.id AND m.depth > seg.fork_depth AND m.depth <= seg.hi"""


def sq_fork(conn, t_id, user, mid) -> int:
    """SQLite fork: one INSERT … SELECT; ids from a function registered on the connection (as the app
    registers ts_casefold), parents by lag() over the path, so the statement is linear in the path."""
    new_thread = new_id("thr")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(
        "INSERT INTO threads (id, user_id, title, metadata) SELECT ?, user_id, title, metadata FROM threads"
        " WHERE id = ? AND user_id = ?",
        (new_thread, t_id, user),
    )
    trunk = conn.execute(
        "INSERT INTO branches (thread_id, parent_branch_id, fork_depth, sibling_index, level)"
        " VALUES (?, NULL, 0, 1, 0) RETURNING id",
        (new_thread,),
    ).fetchone()[0]
    conn.execute(
        f"""WITH src AS MATERIALIZED (SELECT threadstore_new_id('msg') AS new_id, p.* FROM ({SQ_FORK_PATH}) AS p)
            INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at, branch_id, depth, parent_id, sibling_index)
            SELECT new_id, :nt, depth, role, content, metadata, created_at, :trunk, depth,
                   lag(new_id) OVER (ORDER BY depth), 1 FROM src ORDER BY depth""",
        {"nt": new_thread, "trunk": trunk, "mid": mid, "thread": t_id},
    )
    n = conn.execute("SELECT count(*) FROM messages WHERE thread_id = ?", (new_thread,)).fetchone()[0]
    conn.execute(
        """UPDATE threads SET (message_count, current_message_id, current_branch_id, current_depth, last_message_at) =
                    (SELECT seq, id, branch_id, depth, created_at FROM messages WHERE thread_id = :nt ORDER BY seq DESC LIMIT 1)
                    WHERE id = :nt""",
        {"nt": new_thread},
    )
    conn.execute("ROLLBACK")  # measured, not kept
    return n


def sq_heavy(conn, threads):
    deep = threads["deep"]
    path = model.path_of(deep, deep.current)
    out = []
    for label, m in (
        ("delete the leaf", path[-1]),
        ("delete the last segment's start (100 msgs)", path[-100]),
        ("delete at depth 50,001 (~50,500 msgs, 500 branches)", path[50_000]),
    ):
        b = deep.branch_by_id[m.branch_id]
        params = {"b": m.branch_id, "d": m.depth, "fork_depth": b.fork_depth, "parent_branch": b.parent_branch_id}
        start = time.perf_counter()
        conn.execute("BEGIN IMMEDIATE")
        n = sum(conn.execute(q, params).rowcount for q in SQ_DELETE)
        conn.execute("ROLLBACK")
        out.append([label, 1e3 * (time.perf_counter() - start), n])
    bushy = threads["bushy"]
    for label, t, m in (
        ("fork a 1,000-message path", deep, path[999]),
        ("fork the 100,000-message path", deep, path[-1]),
        ("fork a 10,000-message path (bushy, 1,000 segments)", bushy, bushy.current),
    ):
        start = time.perf_counter()
        n = sq_fork(conn, t.id, t.user_id, m.id)
        assert n == m.depth
        out.append([label, 1e3 * (time.perf_counter() - start), n])
    return out


def sq_appends(conn, threads, reps):
    now = datetime.now(UTC).replace(tzinfo=None)
    out = []
    for label, t, fn in (
        ("append, no parent_id small (10)", threads["small"], sq_append),
        ("append, no parent_id lin (100,000)", threads["lin"], sq_append),
        ("append, no parent_id deep (100,999)", threads["deep"], sq_append),
        ("v1 append small (10)", threads["small"], sq_append_v1),
        ("v1 append lin (100,000)", threads["lin"], sq_append_v1),
    ):
        out.append([label, sq_time(lambda: fn(conn, t.id, t.user_id, now), reps)])
    for label, t in (
        ("append with parent_id (new sibling) small (10)", threads["small"]),
        ("append with parent_id (new sibling) deep (100,999)", threads["deep"]),
    ):
        parent = conn.execute(
            "SELECT parent_id FROM messages WHERE id = (SELECT current_message_id FROM threads WHERE id = ?)", (t.id,)
        ).fetchone()[0]
        out.append([label, sq_time(lambda: sq_child(conn, t.id, t.user_id, parent, now), reps)])
    idx = [
        r[0]
        for r in conn.execute(
            "SELECT sibling_index FROM messages WHERE parent_id = (SELECT parent_id FROM messages WHERE id = (SELECT current_message_id FROM threads WHERE id = ?)) ORDER BY sibling_index",
            (threads["deep"].id,),
        )
    ]
    assert idx == list(range(1, len(idx) + 1))
    return out


def sq_main(threads, reps) -> list[str]:
    with sqlite_file("seg") as (conn, _):
        conn.create_function("threadstore_new_id", 1, new_id)
        start = time.perf_counter()
        sq_load(conn, threads)
        print(f"SQLite: loaded in {time.perf_counter() - start:.1f} s", flush=True)
        out = [
            table(
                "(a) segments, SQLite: a page of 50 of the active path; siblings_of",
                ["page", "ms", "ms w/o sibling_count", "v1 ms"],
                sq_pages(conn, threads, reps),
            )
        ]
        out.append(
            table(
                "(a) segments, SQLite: auto-rename source; PATCH current_message_id, descent",
                ["from", "branch hops", "ms"],
                sq_descend(conn, threads, reps),
            )
        )
        out.append(
            table(
                "(a) segments, SQLite: delete and fork (rolled back)",
                ["operation", "ms", "rows"],
                sq_heavy(conn, threads),
            )
        )
        out.append(
            table("(a) segments, SQLite: appends (commit each)", ["append", "ms"], sq_appends(conn, threads, reps))
        )
        return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-only", action="store_true")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--reps", type=int, default=30)
    args = parser.parse_args()
    start = time.perf_counter()
    threads = build()
    print(f"model built in {time.perf_counter() - start:.1f} s", flush=True)
    if not args.sqlite_only:
        asyncio.run(pg_main(threads, args.reps))
    if not args.pg_only:
        sq_main(threads, args.reps)


if __name__ == "__main__":
    main()
