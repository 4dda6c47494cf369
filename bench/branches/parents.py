"""Candidates (b), (c) and (d): a message tree stored as parent pointers.

(b) parent_id + depth + a per-message skew-binary jump pointer (jump_id, jump_depth): the ancestor at any
    depth in O(log depth) rows, then a page is `limit` parent hops (one primary-key probe each).
(c) parent_id + depth only, the recursive-CTE baseline: a page of the path in ascending order must walk
    from the leaf up to the page, so the first page of a 100,000-message path walks 100,000 rows.
(d) materialized path: each message stores the array of its ancestors' ids; a page is a slice of the
    leaf's array, but every append copies its parent's array (O(depth) bytes per message).

    .venv/bin/python bench/branches/parents.py [--pg-only | --sqlite-only] [--reps N]

Same threads as segments.py (built by model.py), same checks against the model. About a minute per database.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime

import model
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
from segments import BODY, LIMIT, build, expected_counts, expected_descent, page_points

DB = "threadstore_h16_par"

SCHEMA = """
CREATE TABLE threads (
    id varchar(64) {C} PRIMARY KEY, user_id varchar(255) NOT NULL, title text, metadata {JSON} NOT NULL DEFAULT '{{}}',
    status varchar(16) NOT NULL DEFAULT 'active', created_at {TS} NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at {TS} NOT NULL DEFAULT CURRENT_TIMESTAMP, archived_at {TS},
    message_count integer NOT NULL DEFAULT 0, last_message_at {TS}, version integer NOT NULL DEFAULT 1,
    current_message_id varchar(64), current_depth integer NOT NULL DEFAULT 0, deleted_count integer NOT NULL DEFAULT 0
);
CREATE TABLE messages (
    id varchar(64) PRIMARY KEY,
    thread_id varchar(64) {C} NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
    seq integer NOT NULL, role varchar(16) NOT NULL, content text NOT NULL, metadata {JSON} NOT NULL DEFAULT '{{}}',
    created_at {TS} NOT NULL,
    parent_id varchar(64), depth integer NOT NULL, sibling_index integer NOT NULL,
    jump_id varchar(64), jump_depth integer,          -- (b) only; (c) leaves them unused
    CONSTRAINT uq_messages_thread_seq UNIQUE (thread_id, seq)
);
-- children of a message by sibling_index (siblings_of, sibling_count, newest child, subtree delete), roots apart
CREATE INDEX ix_messages_children ON messages (parent_id, sibling_index);
CREATE INDEX ix_messages_roots ON messages (thread_id, sibling_index) WHERE parent_id IS NULL;
CREATE TABLE events (
    id {SERIAL} PRIMARY KEY, user_id varchar(255) NOT NULL, thread_id varchar(64) NOT NULL, type varchar(32) NOT NULL,
    body {BYTES} NOT NULL, member text, content_of varchar(64), created_at {TS} NOT NULL
);
"""
SCHEMA_PG = SCHEMA.format(C='COLLATE "C"', JSON="jsonb", TS="timestamptz", SERIAL="bigserial", BYTES="bytea")
SCHEMA_SQLITE = SCHEMA.format(C="", JSON="json", TS="datetime", SERIAL="integer", BYTES="blob")

COLS = "id, seq, role, content, metadata, created_at, parent_id, depth, sibling_index, jump_id, jump_depth"
MCOLS = ", ".join("m." + c for c in COLS.split(", "))


def _probe(condition: str, dialect: str) -> str:
    """One message by id: a LATERAL … LIMIT 1 on PostgreSQL (a primary-key probe whatever the estimates)."""
    if dialect == "postgresql":
        return f"CROSS JOIN LATERAL (SELECT {COLS} FROM messages WHERE id = {condition} LIMIT 1) AS m"
    return f"CROSS JOIN messages m ON m.id = {condition}"


def page_sql(order: str, jumps: bool, dialect: str = "postgresql") -> str:
    """(b) with jumps, (c) without: `la` climbs from the leaf to depth hi (by jumps when they do not overshoot,
    else by parent), `up` walks parent pointers from there down to depth lo."""
    if order == "asc":
        p = """p AS (SELECT coalesce(:leaf, th.current_message_id) AS leaf, :after + 1 AS lo,
                      least(:after + :lim, coalesce(:leaf_depth, th.current_depth)) AS hi
               FROM threads th WHERE th.id = :thread AND th.user_id = :user)"""
    else:  # the cursor is the last row: its parent is the next page's first row
        p = """p AS (SELECT coalesce(:leaf, th.current_message_id) AS leaf,
                      greatest(1, coalesce(:before - 1, th.current_depth) - :lim + 1) AS lo,
                      coalesce(:before - 1, th.current_depth) AS hi
               FROM threads th WHERE th.id = :thread AND th.user_id = :user)"""
    step = "CASE WHEN la.jump_depth >= p.hi THEN la.jump_id ELSE la.parent_id END" if jumps else "la.parent_id"
    count = """CASE WHEN up.parent_id IS NULL
                    THEN (SELECT count(*) FROM messages c WHERE c.thread_id = :thread AND c.parent_id IS NULL)
                    ELSE (SELECT count(*) FROM messages c WHERE c.parent_id = up.parent_id) END"""
    sql = f"""WITH RECURSIVE {p},
la({COLS}) AS (
    SELECT {MCOLS} FROM p {_probe("p.leaf", dialect)}
    UNION ALL
    SELECT {MCOLS} FROM la CROSS JOIN p {_probe(step, dialect)} WHERE la.depth > p.hi
),
up({COLS}) AS (
    SELECT la.* FROM la CROSS JOIN p WHERE la.depth = p.hi
    UNION ALL
    SELECT {MCOLS} FROM up CROSS JOIN p {_probe("up.parent_id", dialect)} WHERE up.depth > p.lo
)
SELECT up.*, {count} AS sibling_count FROM up ORDER BY up.depth {order.upper()}"""
    return sql if dialect == "postgresql" else sqlite_sql(sql)


SIBLINGS = """WITH par AS (SELECT parent_id FROM messages WHERE id = :mid AND thread_id = :thread),
              n AS MATERIALIZED (SELECT count(*) AS n FROM messages c, par WHERE c.parent_id = par.parent_id)
              SELECT m.*, n.n AS sibling_count FROM messages m, n
              WHERE m.parent_id = (SELECT parent_id FROM par) AND m.sibling_index > :after
              ORDER BY m.sibling_index LIMIT :lim"""

DESCEND = {
    "postgresql": """
WITH RECURSIVE d(id, n) AS (
    SELECT id, 0 FROM messages WHERE id = :mid AND thread_id = :thread
    UNION ALL
    SELECT c.id, d.n + 1 FROM d CROSS JOIN LATERAL (
        SELECT id FROM messages WHERE parent_id = d.id ORDER BY sibling_index DESC LIMIT 1) AS c
)
SELECT id, n AS hops FROM d ORDER BY n DESC LIMIT 1""",
    "sqlite": """
WITH RECURSIVE d(id, n) AS (
    SELECT id, 0 FROM messages WHERE id = :mid AND thread_id = :thread
    UNION ALL
    SELECT (SELECT c.id FROM messages c WHERE c.parent_id = d.id ORDER BY c.sibling_index DESC LIMIT 1), d.n + 1
    FROM d WHERE d.id IS NOT NULL
)
SELECT id, n AS hops FROM d WHERE id IS NOT NULL ORDER BY n DESC LIMIT 1""",
}

SUBTREE = """WITH RECURSIVE sub(id) AS (
    SELECT id FROM messages WHERE id = :mid AND thread_id = :thread
    UNION ALL
    SELECT c.id FROM sub JOIN messages c ON c.parent_id = sub.id)"""
DELETE = {
    "postgresql": f"{SUBTREE}, gone AS (DELETE FROM messages WHERE id IN (SELECT id FROM sub) RETURNING 1) SELECT count(*) FROM gone",
    "sqlite": f"DELETE FROM messages WHERE id IN ({SUBTREE} SELECT id FROM sub)",
}

# (b) append without parent_id: the new message's jump needs the parent's row and its jump's, which the
# statement's snapshot may not see after waiting for the lock (a concurrent append committed the parent):
# so a transaction, LOCK then this statement, whatever the configured isolation.
LOCK = "SELECT current_message_id, current_depth FROM threads WHERE id = :thread AND user_id = :user AND status = 'active' FOR UPDATE"
CHILD = """
WITH par AS (SELECT m.id, m.depth, m.jump_id, m.jump_depth, j.jump_id AS jj_id, j.jump_depth AS jj_depth
             FROM messages m LEFT JOIN messages j ON j.id = m.jump_id WHERE m.id = :parent AND m.thread_id = :thread),
pos AS (SELECT par.*, coalesce((SELECT max(sibling_index) FROM messages WHERE parent_id = par.id), 0) + 1 AS idx FROM par),
t AS (UPDATE threads SET message_count = message_count + 1, version = version + 1,
             updated_at = greatest(updated_at, :now), last_message_at = greatest(coalesce(last_message_at, :now), :now),
             current_message_id = :id, current_depth = pos.depth + 1
      FROM pos WHERE threads.id = :thread RETURNING threads.message_count AS seq),
w AS (INSERT INTO messages (id, thread_id, seq, role, content, created_at, parent_id, depth, sibling_index, jump_id, jump_depth)
      SELECT :id, :thread, t.seq, :role, :content, :now, pos.id, pos.depth + 1, pos.idx,
             CASE WHEN pos.jj_id IS NOT NULL AND pos.depth - pos.jump_depth = pos.jump_depth - pos.jj_depth THEN pos.jj_id ELSE pos.id END,
             CASE WHEN pos.jj_id IS NOT NULL AND pos.depth - pos.jump_depth = pos.jump_depth - pos.jj_depth THEN pos.jj_depth ELSE pos.depth END
      FROM pos, t RETURNING seq, depth, sibling_index),
e AS (INSERT INTO events (user_id, thread_id, type, body, member, content_of, created_at)
      SELECT :user, :thread, 'message.created', :body, '"seq":' || w.seq, :id, :now FROM w)
SELECT * FROM w"""

FORK_WALK = {
    "postgresql": """
WITH RECURSIVE up(id, parent_id, depth) AS (
    SELECT id, parent_id, depth FROM messages WHERE id = :mid AND thread_id = :thread
    UNION ALL
    SELECT m.id, m.parent_id, m.depth FROM up CROSS JOIN LATERAL (SELECT id, parent_id, depth FROM messages WHERE id = up.parent_id LIMIT 1) AS m
)
SELECT count(*) FROM up"""
}
FORK_WALK["sqlite"] = FORK_WALK["postgresql"].replace(
    "CROSS JOIN LATERAL (SELECT id, parent_id, depth FROM messages WHERE id = up.parent_id LIMIT 1) AS m",
    "CROSS JOIN messages m ON m.id = up.parent_id",
)


def parent_page_points(t: model.Thread):
    """segments.page_points with cursors of this shape: (leaf id, after) ascending, the last row descending."""
    path = model.path_of(t, t.current)
    out = []
    for where, order, params, expected in page_points(t):
        if order == "asc":
            q = {
                "leaf": None if params["after"] == 0 else t.current.id,
                "after": params["after"],
                "leaf_depth": params["leaf_depth"],
            }
        else:
            before = params.get("before")
            q = {"leaf": None if before is None else path[before - 1].id, "before": before}
        out.append((where, order, q, expected))
    return out


def _rows(t: model.Thread):
    r = model.rows(t)
    thread = (t.id, t.user_id, t.seq, t.current.id, t.current_depth, t.messages[-1].created_at)
    msgs = [(m[0], m[1], m[2], m[3], m[4], m[5], m[8], m[7], m[9], m[10], m[11]) for m in r["messages"]]
    return thread, msgs


THREAD_COLS = ["id", "user_id", "message_count", "current_message_id", "current_depth", "last_message_at"]
MSG_COLS = [
    "id",
    "thread_id",
    "seq",
    "role",
    "content",
    "created_at",
    "parent_id",
    "depth",
    "sibling_index",
    "jump_id",
    "jump_depth",
]


# ============================================================================================ PostgreSQL


async def pg_main(threads, reps) -> None:
    conn = await pg_create(DB)
    try:
        await conn.execute("SET jit = off")
        await conn.execute(SCHEMA_PG)
        for t in threads.values():
            thread, msgs = _rows(t)
            await conn.copy_records_to_table("threads", records=[thread], columns=THREAD_COLS)
            await conn.copy_records_to_table("messages", records=msgs, columns=MSG_COLS)
        await conn.execute("VACUUM ANALYZE")
        rows = []
        for jumps, label in ((True, "(b) jumps"), (False, "(c) recursive CTE")):
            stmts = {o: PgStatement(page_sql(o, jumps)) for o in ("asc", "desc")}
            for name in ("lin", "deep", "bushy"):
                t = threads[name]
                for where, order, q, expected in parent_page_points(t):
                    params = {
                        "thread": t.id,
                        "user": t.user_id,
                        "lim": LIMIT,
                        "after": 0,
                        "before": None,
                        "leaf": None,
                        "leaf_depth": None,
                    } | q
                    got = await stmts[order].fetch(conn, params)
                    assert [r["id"] for r in got] == expected, (label, name, where, order)
                    assert [r["sibling_count"] for r in got] == expected_counts(t, expected)
                    plan = await explain(stmts[order], conn, params)
                    ms = await pg_time(lambda: stmts[order].fetch(conn, params), reps if plan["ms"] < 20 else 3, warm=1)
                    rows.append([f"{label}: {name} {order} {where}", ms, plan["buffers"]])
        table("(b)/(c) parent pointers, PostgreSQL: a page of 50 of the active path", ["page", "ms", "buffers"], rows)

        rows = []
        sib = PgStatement(SIBLINGS)
        wide = threads["wide"]
        kids = sorted((m for m in wide.messages if m.parent_id), key=lambda m: m.sibling_index)
        for where, after in (("first", 0), ("last", 1000 - LIMIT)):
            params = {"thread": wide.id, "mid": kids[0].id, "after": after, "lim": LIMIT}
            got = await sib.fetch(conn, params)
            assert [r["id"] for r in got] == [m.id for m in kids[after : after + LIMIT]]
            plan = await explain(sib, conn, params)
            rows.append(
                [
                    f"siblings_of 1,000 siblings, {where} page",
                    await pg_time(lambda: sib.fetch(conn, params), reps),
                    plan["buffers"],
                ]
            )
        desc = PgStatement(DESCEND["postgresql"])
        deep = threads["deep"]
        path = model.path_of(deep, deep.current)
        for label, t, start in (
            ("descent from the root of deep", deep, path[0]),
            ("descent from the middle of deep", deep, path[50_000]),
            ("descent to a sibling of wide", wide, wide.messages[500]),
        ):
            params = {"thread": t.id, "mid": start.id}
            got = await desc.fetchrow(conn, params)
            assert got["id"] == expected_descent(t, start).id
            plan = await explain(desc, conn, params)
            rows.append([f"{label} ({got['hops']} message hops)", plan["ms"], plan["buffers"]])
        delete = PgStatement(DELETE["postgresql"])
        for label, m in (("delete the leaf", path[-1]), ("delete at depth 50,001 (~50,500 msgs)", path[50_000])):
            plan = await explain(delete, conn, {"thread": deep.id, "mid": m.id})
            rows.append([label, plan["ms"], plan["buffers"]])
        walk = PgStatement(FORK_WALK["postgresql"])
        for label, m in (
            ("fork: the walk of a 1,000-message path (reads only)", path[999]),
            ("fork: the walk of the 100,000-message path (reads only)", path[-1]),
        ):
            plan = await explain(walk, conn, {"thread": deep.id, "mid": m.id})
            rows.append([label, plan["ms"], plan["buffers"]])
        table(
            "(b) parent pointers, PostgreSQL: siblings, descent, delete, fork (EXPLAIN ANALYZE)",
            ["operation", "ms", "buffers"],
            rows,
        )

        rows = []
        now = datetime.now(UTC)
        lock, child = PgStatement(LOCK), PgStatement(CHILD)

        def append(t, parent_of_current: bool):
            async def run():
                async with conn.transaction():
                    cur = await lock.fetchrow(conn, {"thread": t.id, "user": t.user_id})
                    parent = cur["current_message_id"]
                    if parent_of_current:
                        parent = await conn.fetchval("SELECT parent_id FROM messages WHERE id = $1", parent)
                    row = await child.fetchrow(
                        conn,
                        {
                            "thread": t.id,
                            "user": t.user_id,
                            "id": new_id("msg"),
                            "parent": parent,
                            "role": "user",
                            "content": model.CONTENT,
                            "now": now,
                            "body": BODY,
                        },
                    )
                    assert row is not None

            return run

        for label, t, sibling in (
            ("append, no parent_id, small (10)", threads["small"], False),
            ("append, no parent_id, lin (100,000)", threads["lin"], False),
            ("append with parent_id (new sibling), deep", deep, True),
        ):
            run = append(t, sibling)
            rows.append([label, await pg_time(run, reps), await wal_bytes(conn, run, 50)])
        table(
            "(b) parent pointers, PostgreSQL: appends (LOCK + one statement, commit each)",
            ["append", "ms", "WAL bytes"],
            rows,
        )
        await materialized_path(conn)
    finally:
        await conn.close()
        await pg_drop(DB)


async def materialized_path(conn) -> None:
    """(d): what one append costs when each message stores its ancestors' ids."""
    await conn.execute("""CREATE TABLE mp (id varchar(64) PRIMARY KEY, thread_id varchar(64) NOT NULL, depth integer NOT NULL,
                                           path varchar(64)[] NOT NULL, content text NOT NULL)""")
    rows = []
    for depth in (10, 1_000, 10_000, 100_000):
        parent = new_id("msg")
        ancestors = [new_id("msg") for _ in range(depth - 1)]
        await conn.execute("INSERT INTO mp VALUES ($1, 't', $2, $3, $4)", parent, depth, ancestors, model.CONTENT)
        stmt = PgStatement(
            "INSERT INTO mp SELECT :id, thread_id, depth + 1, path || id, :content FROM mp WHERE id = :parent"
        )

        async def run():
            await stmt.fetch(conn, {"id": new_id("msg"), "parent": parent, "content": model.CONTENT})

        ms = await pg_time(run, 10, warm=1)
        wal = await wal_bytes(conn, run, 3)
        size = await conn.fetchval("SELECT pg_column_size(path) FROM mp WHERE id = $1", parent)
        rows.append(
            [f"append at depth {depth:,}", ms, wal, size, f"{depth * size / 2 / 2**30:.2f} GiB" if depth > 1000 else ""]
        )
    table(
        "(d) materialized path, PostgreSQL: one append",
        ["append", "ms", "WAL bytes", "path bytes (compressed)", "a path this deep, all its messages"],
        rows,
    )


# ============================================================================================ SQLite


def sq_main(threads, reps) -> None:
    with sqlite_file("par") as (conn, _):
        conn.executescript(SCHEMA_SQLITE)
        conn.execute("BEGIN")
        for t in threads.values():
            thread, msgs = _rows(t)
            conn.execute(
                f"INSERT INTO threads ({', '.join(THREAD_COLS)}) VALUES (?,?,?,?,?,?)",
                (*thread[:5], thread[5].replace(tzinfo=None)),
            )
            conn.executemany(
                f"INSERT INTO messages ({', '.join(MSG_COLS)}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(*m[:5], m[5].replace(tzinfo=None), *m[6:]) for m in msgs],
            )
        conn.execute("COMMIT")
        conn.execute("ANALYZE")
        rows = []
        for jumps, label in ((True, "(b) jumps"), (False, "(c) recursive CTE")):
            stmts = {o: page_sql(o, jumps, "sqlite") for o in ("asc", "desc")}
            for name in ("lin", "deep", "bushy"):
                t = threads[name]
                for where, order, q, expected in parent_page_points(t):
                    params = {
                        "thread": t.id,
                        "user": t.user_id,
                        "lim": LIMIT,
                        "after": 0,
                        "before": None,
                        "leaf": None,
                        "leaf_depth": None,
                    } | q
                    got = conn.execute(stmts[order], params).fetchall()
                    assert [r[0] for r in got] == expected, (label, name, where, order)
                    start = time.perf_counter()
                    conn.execute(stmts[order], params).fetchall()
                    once = 1e3 * (time.perf_counter() - start)
                    rows.append(
                        [
                            f"{label}: {name} {order} {where}",
                            sq_time(
                                lambda: conn.execute(stmts[order], params).fetchall(), reps if once < 20 else 2, warm=0
                            ),
                        ]
                    )
        deep = threads["deep"]
        path = model.path_of(deep, deep.current)
        for label, start in (
            ("descent from the root of deep", path[0]),
            ("descent from the middle of deep", path[50_000]),
        ):
            params = {"thread": deep.id, "mid": start.id}
            got = conn.execute(DESCEND["sqlite"], params).fetchone()
            assert got[0] == expected_descent(deep, start).id
            rows.append(
                [
                    f"{label} ({got[1]} message hops)",
                    sq_time(lambda: conn.execute(DESCEND["sqlite"], params).fetchone(), 3, warm=0),
                ]
            )
        for label, m in (("delete at depth 50,001 (~50,500 msgs)", path[50_000]),):
            start = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            n = conn.execute(DELETE["sqlite"], {"thread": deep.id, "mid": m.id}).rowcount
            conn.execute("ROLLBACK")
            rows.append([f"{label}: {n} rows", 1e3 * (time.perf_counter() - start)])
        for label, m in (("fork: the walk of the 100,000-message path (reads only)", path[-1]),):
            rows.append(
                [
                    label,
                    sq_time(
                        lambda: conn.execute(FORK_WALK["sqlite"], {"thread": deep.id, "mid": m.id}).fetchone(),
                        3,
                        warm=0,
                    ),
                ]
            )
        table("(b)/(c) parent pointers, SQLite", ["operation", "ms"], rows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pg-only", action="store_true")
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    threads = build()
    if not args.sqlite_only:
        asyncio.run(pg_main(threads, args.reps))
    if not args.pg_only:
        sq_main(threads, args.reps)


if __name__ == "__main__":
    main()
