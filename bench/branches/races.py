"""Races on PostgreSQL with candidate (a)'s statements (segments_sql.py): the issue's race families, each
checked against what committed. SQLite needs none of this: a writer holds the database's write lock from
BEGIN IMMEDIATE, so its writes never overlap.

    .venv/bin/python bench/branches/races.py [--isolation "READ COMMITTED"|"REPEATABLE READ"|SERIALIZABLE]

1. 40 concurrent appends with the same explicit parent_id → 40 new siblings, sibling_index gapless.
2. appends without parent_id interleaved with branch switches → every append's parent is the leaf that was
   current just before it (checked by replaying every write in version order), and current is always a leaf.
3. deletes of a branch racing appends under it → no orphan, no 500: an append either commits (and is
   deleted with the branch, or lands after it) or finds its parent gone.
4. a fork racing appends to the source → the copy is exactly one path of the source.

The lock point is the thread row: every write to a thread's tree updates it (version + 1), so writes to one
thread are serialized by its row lock, and a write decided on a snapshot checks the version it read.
About 20 seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import random
from collections import Counter
from datetime import UTC, datetime

import asyncpg
import model
import segments
import segments_sql as S
from common import PgStatement, new_id, pg_create, pg_drop, pg_dsn

DB = "threadstore_h16_race"
RETRYABLE = (asyncpg.SerializationError, asyncpg.DeadlockDetectedError)
NOW = datetime.now(UTC)
stats: Counter[str] = Counter()


async def unit(pool, isolation, work):
    """A unit of work: a transaction at the configured level, run again on a serialization failure."""
    for attempt in range(20):
        async with pool.acquire() as conn:
            try:
                async with conn.transaction(isolation=isolation):
                    return await work(conn)
            except RETRYABLE:
                stats["serialization retries"] += 1
                await asyncio.sleep(random.random() * 0.01 * (attempt + 1))
    raise RuntimeError("gave up")


async def one_statement(pool, stmt, params):
    """A lone statement (no BEGIN): how @one_write units run on PostgreSQL."""
    for attempt in range(20):
        async with pool.acquire() as conn:
            try:
                return await stmt.fetchrow(conn, params)
            except RETRYABLE:
                stats["serialization retries"] += 1
                await asyncio.sleep(random.random() * 0.01 * (attempt + 1))
    raise RuntimeError("gave up")


APPEND_SRC = (
    S.APPEND_PG.replace(
        "threads.current_depth AS depth, cur.current_message_id AS parent_id)",
        "threads.current_depth AS depth, cur.current_message_id AS parent_id, threads.version)",
    )
    .replace("RETURNING seq, depth, parent_id)", "RETURNING seq, depth, parent_id, id)")
    .replace("SELECT * FROM w", "SELECT w.*, (SELECT version FROM t) AS version FROM w")
)
APPEND = PgStatement(APPEND_SRC)
CHILD_ONE = PgStatement(S.CHILD_ONE_PG["message"])
LOCK = PgStatement(S.LOCK_PG)
CHILD = PgStatement(S.CHILD_PG["message"])
DESCEND = PgStatement(S.DESCEND_PG)
SWITCH = PgStatement(S.SWITCH_PG)
TARGET = PgStatement(S.DELETE_TARGET_PG)
DELETE = PgStatement(S.DELETE_PG)


def params(t, **kw):
    return {
        "thread": t.id,
        "user": t.user_id,
        "now": NOW,
        "body": segments.BODY,
        "role": "assistant",
        "content": model.CONTENT,
    } | kw


async def append_child(pool, isolation, t, parent_id):
    """Append with parent_id: one version-checked statement; if it matched nothing, LOCK + CHILD."""
    p = params(t, id=new_id("msg"), parent=parent_id, content=new_id("c"))
    row = await one_statement(pool, CHILD_ONE, p)
    if row is not None:
        stats["child: one statement"] += 1
        return row

    async def locked(conn):
        if await LOCK.fetchrow(conn, p) is None:
            return None
        return await CHILD.fetchrow(conn, p)

    row = await unit(pool, isolation, locked)
    stats["child: fell back to LOCK + CHILD" if row else "child: parent gone (422)"] += 1
    return row


async def switch(pool, isolation, t, message_id):
    """PATCH current_message_id as a @one_write unit: read the version, descend, compare-and-set; when a write
    committed meanwhile, run again as a transaction that locks the thread row first (it cannot lose then)."""
    async with pool.acquire() as conn:
        version = await conn.fetchval("SELECT version FROM threads WHERE id = $1", t.id)
        leaf = await DESCEND.fetchrow(conn, {"thread": t.id, "mid": message_id})
        if leaf is None:
            return None
        try:
            row = await SWITCH.fetchrow(
                conn,
                params(t, leaf=leaf["id"], leaf_branch=leaf["branch_id"], leaf_depth=leaf["depth"], version=version),
            )
        except RETRYABLE:  # REPEATABLE READ / SERIALIZABLE: a conflict instead of no match
            stats["serialization retries"] += 1
            row = None
    if row is not None:
        stats["switch: compare-and-set"] += 1
        return leaf["id"], row["version"]

    async def locked(conn):
        version = (await LOCK.fetchrow(conn, params(t)))["version"]
        leaf = await DESCEND.fetchrow(conn, {"thread": t.id, "mid": message_id})
        row = await SWITCH.fetchrow(
            conn, params(t, leaf=leaf["id"], leaf_branch=leaf["branch_id"], leaf_depth=leaf["depth"], version=version)
        )
        return leaf["id"], row["version"]

    stats["switch: stale, ran again locked"] += 1
    return await unit(pool, isolation, locked)


async def delete(pool, isolation, t, message_id):
    """DELETE a message's subtree: LOCK, delete, repair current if it went, one version."""

    async def work(conn):
        if await LOCK.fetchrow(conn, params(t)) is None:
            return None
        target = await TARGET.fetchrow(conn, {"thread": t.id, "mid": message_id})
        if target is None:
            return None
        gone = await DELETE.fetchrow(conn, dict(target))
        current = await conn.fetchval("SELECT current_message_id FROM threads WHERE id = $1", t.id)
        if not await conn.fetchval("SELECT count(*) FROM messages WHERE id = $1", current):
            start = target["parent_id"] or await conn.fetchval(
                "SELECT m.id FROM branches b JOIN messages m ON m.branch_id = b.id AND m.depth = 1 "
                "WHERE b.thread_id = $1 ORDER BY m.sibling_index DESC LIMIT 1",
                t.id,
            )
            leaf = await DESCEND.fetchrow(conn, {"thread": t.id, "mid": start}) if start else None
            trunk = await conn.fetchval(
                "SELECT id FROM branches WHERE thread_id = $1 AND parent_branch_id IS NULL", t.id
            )
            await conn.execute(
                "UPDATE threads SET current_message_id = $2, current_branch_id = $3, current_depth = $4 WHERE id = $1",
                t.id,
                leaf["id"] if leaf else None,
                leaf["branch_id"] if leaf else trunk,
                leaf["depth"] if leaf else 0,
            )
        await conn.execute(
            "UPDATE threads SET deleted_count = deleted_count + $2, version = version + 1 WHERE id = $1",
            t.id,
            gone["messages"],
        )
        return gone["messages"]

    return await unit(pool, isolation, work)


async def invariants(conn, t) -> None:
    orphans = await conn.fetchval(
        """SELECT count(*) FROM messages m WHERE m.thread_id = $1 AND m.parent_id IS NOT NULL
                                     AND NOT EXISTS (SELECT 1 FROM messages p WHERE p.id = m.parent_id)""",
        t.id,
    )
    lost_branches = await conn.fetchval(
        """SELECT count(*) FROM branches b WHERE b.thread_id = $1 AND b.parent_branch_id IS NOT NULL
                                           AND NOT EXISTS (SELECT 1 FROM branches p WHERE p.id = b.parent_branch_id)""",
        t.id,
    )
    empty_branches = await conn.fetchval(
        """SELECT count(*) FROM branches b WHERE b.thread_id = $1 AND b.parent_branch_id IS NOT NULL
                                            AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.branch_id = b.id)""",
        t.id,
    )
    cur = await conn.fetchrow(
        "SELECT current_message_id, current_branch_id, current_depth FROM threads WHERE id = $1", t.id
    )
    children = await conn.fetchval("SELECT count(*) FROM messages WHERE parent_id = $1", cur["current_message_id"])
    where = await conn.fetchrow("SELECT branch_id, depth FROM messages WHERE id = $1", cur["current_message_id"])
    # the stored tree agrees with parent_id: each message's parent is its predecessor on its path
    mismatched = await conn.fetchval(
        """
        SELECT count(*) FROM messages m JOIN branches b ON b.id = m.branch_id
        LEFT JOIN messages p ON p.id = m.parent_id
        WHERE m.thread_id = $1 AND NOT (
            (m.parent_id IS NULL AND m.depth = 1) OR
            (p.depth = m.depth - 1 AND (p.branch_id = m.branch_id OR (m.depth = b.fork_depth + 1 AND p.branch_id = b.parent_branch_id))))""",
        t.id,
    )
    assert orphans == 0 and lost_branches == 0 and empty_branches == 0, (orphans, lost_branches, empty_branches)
    assert children == 0, "current is not a leaf"
    assert where is None or (where["branch_id"], where["depth"]) == (cur["current_branch_id"], cur["current_depth"])
    assert mismatched == 0, mismatched


async def race_siblings(pool, isolation, conn) -> str:
    t = model.new_thread()
    root = model.append(t, None, role="user")
    model.append(t)
    await segments_load(conn, t)
    rows = await asyncio.gather(*(append_child(pool, isolation, t, root.id) for _ in range(40)))
    assert all(rows)
    idx = [
        r[0]
        for r in await conn.fetch(
            "SELECT sibling_index FROM messages WHERE parent_id = $1 ORDER BY sibling_index", root.id
        )
    ]
    assert idx == list(range(1, 42)), idx
    await invariants(conn, t)
    return "40 concurrent appends, same parent_id: 41 children, sibling_index 1..41 gapless"


async def race_switches(pool, isolation, conn) -> str:
    t = model.linear(20)
    await segments_load(conn, t)
    log = []  # (version, kind, parent or leaf, new id)

    async def appender():
        for _ in range(30):
            row = await one_statement(pool, APPEND, params(t, id=new_id("msg")))
            log.append((row["version"], "append", row["parent_id"], row["id"]))

    async def switcher():
        for _ in range(30):
            ids = [r[0] for r in await conn_pool_fetch(pool, "SELECT id FROM messages WHERE thread_id = $1", t.id)]
            got = await switch(pool, isolation, t, random.choice(ids))
            if got:
                log.append((got[1], "switch", got[0], None))

    await asyncio.gather(*(appender() for _ in range(6)), *(switcher() for _ in range(3)))
    # Replay in version order: each append's parent is the current leaf before it; each switch lands on a leaf.
    current, children = t.current.id, Counter()
    start = await conn.fetchval("SELECT version FROM threads WHERE id = $1", t.id) - len(log)
    for expected, (version, kind, a, b) in enumerate(sorted(log), start + 1):
        assert version == expected, "a version was skipped or repeated"
        if kind == "append":
            assert a == current, "an append's parent was not the current leaf"
            children[a] += 1
            current = b
        else:
            assert children[a] == 0, "a switch stored a message with children"
            current = a
    assert current == await conn.fetchval("SELECT current_message_id FROM threads WHERE id = $1", t.id)
    await invariants(conn, t)
    return f"{sum(1 for e in log if e[1] == 'append')} appends without parent_id and {sum(1 for e in log if e[1] == 'switch')} switches: replayed in version order, every parent was the current leaf"


async def race_delete(pool, isolation, conn) -> str:
    outcomes = Counter()
    for _ in range(8):
        t = model.linear(10)
        base = t.current
        branch_root = model.append(t, base)  # a child of the leaf; then a sibling branch of it
        for _ in range(5):
            model.append(t)
        model.append(t, base)
        await segments_load(conn, t)
        under = [m.id for m in t.messages if m.seq >= branch_root.seq and m.seq < branch_root.seq + 6]

        async def appends():
            for _ in range(15):
                row = await append_child(pool, isolation, t, random.choice(under))
                outcomes["append committed" if row else "append: parent gone, clean 422"] += 1

        async def deleter():
            await asyncio.sleep(random.random() * 0.02)
            n = await delete(pool, isolation, t, branch_root.id)
            outcomes["delete committed"] += 1 if n else 0

        await asyncio.gather(appends(), appends(), deleter())
        await invariants(conn, t)
        left = await conn.fetchval("SELECT count(*) FROM messages WHERE id = $1", branch_root.id)
        assert left == 0
    return "8 times (delete of a branch racing 30 appends under it): no orphan, no lost branch row; " + ", ".join(
        f"{k}: {v}" for k, v in sorted(outcomes.items())
    )


FORK_CURRENT = PgStatement(
    S.FORK_PG.replace(
        "WITH RECURSIVE me AS (SELECT m.branch_id, m.depth FROM messages m WHERE m.id = :mid AND m.thread_id = :thread)",
        "WITH RECURSIVE me AS (SELECT m.branch_id, m.depth FROM threads t JOIN messages m ON m.id = t.current_message_id WHERE t.id = :thread)",
    )
)


async def race_fork(pool, isolation, conn) -> str:
    t = model.linear(200)
    await segments_load(conn, t)
    forks = []

    async def appender():
        for i in range(40):
            if i % 10 == 5:
                ids = [
                    r[0]
                    for r in await conn_pool_fetch(
                        pool, "SELECT parent_id FROM messages WHERE thread_id = $1 AND parent_id IS NOT NULL", t.id
                    )
                ]
                await append_child(pool, isolation, t, random.choice(ids))
            else:
                await one_statement(pool, APPEND, params(t, id=new_id("msg"), content=new_id("c")))

    async def forker():
        for _ in range(10):
            nt = new_id("thr")
            await one_statement(pool, FORK_CURRENT, {"thread": t.id, "user": t.user_id, "new_thread": nt})
            forks.append(nt)

    await asyncio.gather(appender(), appender(), forker())
    for nt in forks:
        copy = [
            r["content"] for r in await conn.fetch("SELECT content FROM messages WHERE thread_id = $1 ORDER BY seq", nt)
        ]
        last = await conn.fetchval("SELECT id FROM messages WHERE thread_id = $1 AND content = $2", t.id, copy[-1])
        path = [
            r["content"]
            for r in await conn.fetch(
                """
            WITH RECURSIVE up(id, parent_id, content, depth) AS (
                SELECT id, parent_id, content, depth FROM messages WHERE id = $1
                UNION ALL SELECT m.id, m.parent_id, m.content, m.depth FROM up JOIN messages m ON m.id = up.parent_id)
            SELECT content FROM up ORDER BY depth""",
                last,
            )
        ]
        assert copy == path, "a fork is not one path of the source"
    await invariants(conn, t)
    return f"{len(forks)} forks racing 80 appends (some with parent_id): each copy is exactly the source's path to one message"


async def conn_pool_fetch(pool, sql, *args):
    async with pool.acquire() as c:
        return await c.fetch(sql, *args)


async def segments_load(conn, t) -> None:
    await segments.pg_load_thread(conn, t)
    await conn.execute(
        "SELECT setval(pg_get_serial_sequence('branches', 'id'), greatest((SELECT max(id) FROM branches), 1000000))"
    )


async def main(isolation: str) -> None:
    conn = await pg_create(DB)
    try:
        await conn.execute(S.SCHEMA_PG)
        iso = {
            "READ COMMITTED": "read_committed",
            "REPEATABLE READ": "repeatable_read",
            "SERIALIZABLE": "serializable",
        }[isolation]
        pool = await asyncpg.create_pool(
            pg_dsn(DB), min_size=10, max_size=10, server_settings={"default_transaction_isolation": isolation.lower()}
        )
        try:
            for race in (race_siblings, race_switches, race_delete, race_fork):
                stats.clear()
                print(
                    f"- {isolation}: {await race(pool, iso, conn)} ({', '.join(f'{k}: {v}' for k, v in sorted(stats.items()))})",
                    flush=True,
                )
        finally:
            await pool.close()
    finally:
        await conn.close()
        await pg_drop(DB)


async def controls() -> None:
    """The same races with the lock point taken away: each check must fail, or it proves nothing."""
    global APPEND, CHILD_ONE, CHILD
    conn = await pg_create(DB)
    try:
        await conn.execute(S.SCHEMA_PG)
        pool = await asyncpg.create_pool(pg_dsn(DB), min_size=10, max_size=10)
        try:
            good = APPEND, CHILD_ONE, CHILD
            # 1. the parent read from the snapshot instead of the locked row
            APPEND = PgStatement(APPEND_SRC.replace("AND status = 'active' FOR UPDATE", "AND status = 'active'"))
            # 2. the new sibling's statement without its version check, and no lock before CHILD
            CHILD_ONE = PgStatement(S.CHILD_ONE_PG["message"].replace("AND threads.version = v.version", ""))
            for name, race in (
                ("no FOR UPDATE in the append", race_switches),
                ("no version check on a new sibling", race_siblings),
            ):
                try:
                    await race(pool, "read_committed", conn)
                    print(f"- control '{name}': NOT caught (the check proves nothing)")
                except AssertionError as caught:
                    print(f"- control '{name}': caught: {caught}")
            APPEND, CHILD_ONE, CHILD = good
        finally:
            await pool.close()
    finally:
        await conn.close()
        await pg_drop(DB)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--isolation", default="READ COMMITTED")
    parser.add_argument("--controls", action="store_true", help="run the races with the lock point removed")
    args = parser.parse_args()
    asyncio.run(controls() if args.controls else main(args.isolation))
