"""WAL written per write, threadstore against the yardstick, through each app's HTTP API.

    .venv/bin/python bench/wal.py [--database-url URL] [--writes 200] [--threads 20]

Makes its own database (dropped at the end), starts both servers as bench/run does, and for each app and
write (create thread, append message, patch metadata) sends `--writes` requests one after another. The WAL
of each window is read back with pg_walinspect (so the server user must be allowed to create that
extension) and only the records of the benchmark database are counted: other databases on a shared server
do not blur the figure. It prints bytes and records per write, the bytes without full-page images (those
depend on when the last checkpoint was), and per relation the records written, e.g. how many btree leaf
inserts each index takes per append. See docs/performance.md.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import secrets
import sys
from collections import Counter
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import seeding
from servers import Server, start_threadstore, start_yardstick

from threadstore.auth import issue_token

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
USER = "wal_user"
WRITES = ("create", "append", "patch")
# Autovacuum would write into a window at random; the measured tables are small, so it is off for the run.
TABLES = ("threads", "messages", "events", "idempotency_keys", "ys_threads", "ys_messages")
_BLOCK = re.compile(r"rel \d+/(\d+)/(\d+) fork (\w+)")


@dataclass
class Window:
    bytes: int = 0
    fpi_bytes: int = 0
    records: int = 0
    by_relation: Counter[tuple[str, str]] = field(default_factory=Counter)  # (relation, rmgr:type) → records
    bytes_by_relation: Counter[tuple[str, str]] = field(default_factory=Counter)  # … → bytes


async def wal_of(conn: asyncpg.Connection, start: str, end: str, db_oid: int, names: dict[int, str]) -> Window:
    rows = await conn.fetch(
        "SELECT xid::text::bigint AS xid, resource_manager, record_type, record_length, fpi_length, block_ref"
        " FROM pg_get_wal_records_info($1::text::pg_lsn, $2::text::pg_lsn)",
        start,
        end,
    )
    ours = [r for r in rows if any(int(db) == db_oid for db, _, _ in _BLOCK.findall(r["block_ref"] or ""))]
    xids = {r["xid"] for r in ours if r["xid"]}
    ours += [r for r in rows if not r["block_ref"] and r["xid"] in xids]  # their commit records
    window = Window()
    for r in ours:
        window.bytes += r["record_length"]
        window.fpi_bytes += r["fpi_length"]
        window.records += 1
        blocks = _BLOCK.findall(r["block_ref"] or "")
        relation = "-"
        if blocks:  # named after its first block
            _, filenode, fork = blocks[0]
            relation = names.get(int(filenode), filenode) + ("" if fork == "main" else f" ({fork})")
        key = (relation, f"{r['resource_manager']}:{r['record_type']}")
        window.by_relation[key] += 1
        window.bytes_by_relation[key] += r["record_length"]
    return window


async def settle(conn: asyncpg.Connection, app: str) -> None:
    """Lets threadstore's publisher finish what follows the writes (its NOTIFY): that belongs to the write."""
    if app == "ts":
        await asyncio.sleep(0.5)


_serial = count()  # every write's values are new, so no PATCH is a no-op


async def drive(client: httpx.AsyncClient, write: str, thread_ids: list[str], n: int) -> None:
    for k in range(n):
        thread_id, i = thread_ids[k % len(thread_ids)], next(_serial)
        if write == "create":
            response = await client.post("/api/threads", json={"title": f"wal {i}", "metadata": {"n": str(i)}})
        elif write == "append":
            response = await client.post(f"/api/threads/{thread_id}/messages", json={"content": f"wal message {i}"})
        else:
            response = await client.patch(f"/api/threads/{thread_id}", json={"metadata": {"wal": str(i)}})
        response.raise_for_status()


async def measure(servers: dict[str, Server], dsn: str, token: str, writes: int, threads: int) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    headers = {"Authorization": f"Bearer {token}"}
    results: dict[str, Any] = {}
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
        for table in TABLES:
            await conn.execute(f"ALTER TABLE {table} SET (autovacuum_enabled = off)")
        db_oid = await conn.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()")
        for app, server in servers.items():
            async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
                ids = []
                for i in range(threads):
                    response = await client.post("/api/threads", json={"title": f"wal {i}", "metadata": {}})
                    response.raise_for_status()
                    ids.append(response.json()["id"])
                await conn.execute("CHECKPOINT")  # no checkpoint inside a window; the warm-up takes the FPIs
                for write in WRITES:
                    await drive(client, write, ids, max(writes // 10, len(ids)))
                    await settle(conn, app)
                    start = await conn.fetchval("SELECT pg_current_wal_insert_lsn()::text")
                    await drive(client, write, ids, writes)
                    await settle(conn, app)
                    end = await conn.fetchval("SELECT pg_current_wal_flush_lsn()::text")
                    names = {r[0]: r[1] for r in await conn.fetch("SELECT relfilenode::int, relname FROM pg_class")}
                    results[f"{app} {write}"] = await wal_of(conn, start, end, db_oid, names)
    finally:
        await conn.close()
    return results


def report(results: dict[str, Window], writes: int) -> str:
    lines = [
        f"WAL per write ({writes} sequential writes per row, after a warm-up; pg_walinspect, this database only)",
        "",
        "| app write | bytes | bytes without FPI | records |",
        "|---|---:|---:|---:|",
    ]
    for key, w in results.items():
        lines.append(
            f"| {key} | {w.bytes / writes:,.0f} | {(w.bytes - w.fpi_bytes) / writes:,.0f} | {w.records / writes:.1f} |"
        )
    lines.append("")
    for write in WRITES:
        ts, ys = results[f"ts {write}"], results[f"ys {write}"]
        ratio = (ts.bytes - ts.fpi_bytes) / max(ys.bytes - ys.fpi_bytes, 1)
        lines.append(f"ts/ys {write}, without FPI: {ratio:.2f}x (with: {ts.bytes / max(ys.bytes, 1):.2f}x)")
    lines += ["", "Records and bytes per write by relation (records of 0.1 per write and up):", ""]
    for key, w in results.items():
        lines.append(f"{key}:")
        for (relation, kind), records in sorted(w.by_relation.items()):
            if records / writes >= 0.1:
                size = w.bytes_by_relation[(relation, kind)] / writes
                lines.append(f"  {relation:36} {kind:28} {records / writes:5.2f} {size:6.0f}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(prog="bench/wal.py", description=__doc__)
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--database-name", default="threadstore_bench_wal")
    p.add_argument("--yardstick", type=Path, default=ROOT.parent / "shared" / "bench" / "yardstick")
    p.add_argument("--writes", type=int, default=200, help="measured writes per app and kind")
    p.add_argument("--threads", type=int, default=20, help="threads the appends and patches go round")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = p.parse_args()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    dsns = seeding.Dsns.on_server(args.database_url, args.database_name)
    ts_url = dsns.threadstore
    secret = secrets.token_urlsafe(48)
    servers: dict[str, Server] = {}
    try:
        asyncio.run(seeding.recreate_database(dsns))
        seeding.migrate_threadstore(VENV_BIN / "threadstore", ts_url, out)
        seeding.seed_yardstick(args.yardstick, dsns.bench, seeding.Shape(100, 20, 2, 10, 0), out)
        servers["ts"] = start_threadstore(VENV_BIN, ts_url, secret, "threadstore-wal", out)
        servers["ys"] = start_yardstick(VENV_BIN, args.yardstick, dsns.bench, secret, out)
        servers["ts"].wait_ready("/readyz")
        servers["ys"].wait_ready("/openapi.json")
        token = issue_token(secret, USER, None)
        results = asyncio.run(measure(servers, dsns.bench, token, args.writes, args.threads))
        print(report(results, args.writes))
        return 0
    finally:
        for server in servers.values():
            server.stop()
        asyncio.run(seeding.drop_database(dsns))


if __name__ == "__main__":
    raise SystemExit(main())
