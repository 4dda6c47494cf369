"""WAL per delta (issue 17, item 1): what one 40-character delta costs PostgreSQL when its reply already holds
1 KB and when it holds 200 KB, through threadstore's HTTP API; and, as the counterfactual the design avoids,
the same deltas as `UPDATE … SET content = content || $1` of a text column on a scratch table.

Per case: 20 replies (rows) are brought to the size, a CHECKPOINT runs, each gets one unmeasured delta (so its
pages have had their full-page image), then 200 deltas go round the 20 one after another (10 each: a reply
grows by at most 400 characters in the window). The window's WAL is read back with pg_walinspect through the
probe of bench/amplification.py (this database's records only, as there): each delta is one transaction, so
the figure is the median over the window's transactions of their records' bytes, commit included. Beside it:
the mean (every record of this database in the window ÷ deltas, so work outside the transactions counts too)
and the server-wide median of the WAL position's move around each request, which a shared server blurs.

The text is random words (seeded), compressible about as prose is: PostgreSQL compresses a TOASTed value, so a
text of one repeated character would make the counterfactual look cheap.
"""

from __future__ import annotations

import asyncio
import random
import statistics
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
import orjson
from amplification import TEXT as PROSE
from amplification import Probe
from rawhttp import Connection
from streaming import TEXT as DELTA

REPLIES = 20
KIB = 1024
SIZES = {"1 KB": KIB, "200 KB": 200 * KIB}
FILL_CHUNK = 51_200  # characters per filling delta (the API takes up to 65,536)
MAX_RATIO = 1.5  # the target: a delta at 200 KB within 1.5x the WAL of one at 1 KB
_WORDS = sorted(set(PROSE.replace(",", "").replace(".", "").replace(":", "").split()))

# Per transaction of the window that wrote blocks of this database ($3), commit record included; then the
# records of this database written outside any transaction (xid 0: pruning, say), as one row with xid 0.
_TRANSACTIONS = """
WITH r AS (
    SELECT xid::text::bigint AS xid, (record_length + 7) / 8 * 8 AS bytes, fpi_length,
           coalesce(block_ref ~ $3, false) AS here
    FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn)
), x AS (SELECT DISTINCT xid FROM r WHERE here AND xid <> 0)
SELECT xid, sum(bytes)::bigint AS bytes, sum(fpi_length)::bigint AS fpi_bytes, count(*) AS records
FROM r WHERE xid IN (SELECT xid FROM x) GROUP BY xid
UNION ALL
SELECT 0, coalesce(sum(bytes), 0)::bigint, coalesce(sum(fpi_length), 0)::bigint, count(*) FROM r
WHERE here AND xid = 0
"""


def prose(characters: int, seed: int) -> str:
    rng = random.Random(seed)
    words: list[str] = []
    length = 0
    while length < characters:
        word = rng.choice(_WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:characters]


@dataclass(frozen=True)
class Case:
    label: str
    design: str  # "threadstore" or "naive"
    size: str
    deltas: int
    transactions: int  # of this database in the window (one per delta, plus any other writer's)
    median: float  # bytes per transaction
    median_without_fpi: float
    mean: float  # every record of this database in the window ÷ deltas
    records: float  # per delta
    images: int  # full-page images in the window
    server_wide_median: float  # WAL position difference around each request

    @property
    def key(self) -> str:
        return f"{self.design} {self.size}"


async def _window(probe: Probe, deltas: int, send: Callable[[int], Awaitable[None]]) -> tuple[list[int], int, int]:
    """Sends the deltas one after another: the server-wide WAL move around each, and the window's bounds."""
    moves = []
    lsn = "SELECT pg_current_wal_insert_lsn()"
    start = int(await probe.conn.fetchval(lsn))
    for n in range(deltas):
        before = int(await probe.conn.fetchval(lsn))
        await send(n)
        moves.append(int(await probe.conn.fetchval(lsn)) - before)
    return moves, start, int(await probe.conn.fetchval(lsn))


async def _transactions(probe: Probe, start: int, end: int) -> list[asyncpg.Record]:
    for _ in range(50):  # pg_walinspect reads only flushed WAL; the WAL writer flushes within 200 ms
        if await probe.conn.fetchval("SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn", end):
            break
        await asyncio.sleep(0.1)
    rows = await probe.conn.fetch(_TRANSACTIONS, start, end, f"rel [0-9]+/{probe.oid}/")
    await probe.conn.execute("SELECT pg_replication_slot_advance($1, $2::pg_lsn)", probe.slot, end)
    return list(rows)


async def _case(probe: Probe, design: str, size: str, deltas: int, send: Callable[[int], Awaitable[None]]) -> Case:
    await probe.checkpoint()
    for n in range(REPLIES):  # each row's pages get their image now, not in the window
        await send(n)
    moves, start, end = await _window(probe, deltas, send)
    if not probe.walinspect:
        median = float(statistics.median(moves))
        return Case(f"{design} at {size}", design, size, deltas, 0, median, median, median, 0.0, 0, median)
    rows = await _transactions(probe, start, end)
    per_tx = [r for r in rows if r["xid"]]
    loose = next((r for r in rows if not r["xid"]), None)
    total = sum(r["bytes"] for r in rows)
    records = sum(r["records"] for r in rows)
    images = sum(1 for r in per_tx if r["fpi_bytes"]) + (1 if loose is not None and loose["fpi_bytes"] else 0)
    return Case(
        label=f"{design} at {size}", design=design, size=size, deltas=deltas, transactions=len(per_tx),
        median=float(statistics.median(r["bytes"] for r in per_tx)),
        median_without_fpi=float(statistics.median(r["bytes"] - r["fpi_bytes"] for r in per_tx)),
        mean=total / deltas, records=records / deltas, images=images,
        server_wide_median=float(statistics.median(moves)),
    )  # fmt: skip


async def _threadstore(url: str, token: str, probe: Probe, size: str, deltas: int) -> Case:
    conn = Connection(url, token)
    paths: list[str] = []  # of each reply's message
    lengths: list[int] = []  # acknowledged
    try:
        for i in range(REPLIES):
            status, data = await conn.request("POST", "/api/threads", orjson.dumps({"title": f"wal delta {i}"}))
            thread_id = orjson.loads(data)["id"]
            body = {"role": "assistant", "content": "", "status": "in_progress"}
            status, data = await conn.request("POST", f"/api/threads/{thread_id}/messages", orjson.dumps(body))
            if status != 201:
                raise RuntimeError(f"starting a reply answered {status}: {data[:300]!r}")
            paths.append(f"/api/threads/{thread_id}/messages/{orjson.loads(data)['id']}")
            lengths.append(0)
            text = prose(SIZES[size], seed=i)
            for start in range(0, len(text), FILL_CHUNK):  # grown by deltas, as a streamed reply grows
                await _delta(conn, paths, lengths, i, text[start : start + FILL_CHUNK])

        async def send(n: int) -> None:
            await _delta(conn, paths, lengths, n % REPLIES, DELTA)

        case = await _case(probe, "threadstore", size, deltas, send)
        for i, path in enumerate(paths):  # closed: the stale sweep will not end them during a later phase
            status, data = await conn.request("GET", path)
            if len(orjson.loads(data)["content"]) != lengths[i]:
                raise RuntimeError(f"reply {path} does not read back as its deltas")
            await conn.request("PATCH", path, orjson.dumps({"status": "completed"}))
        return case
    finally:
        conn.close()


async def _delta(conn: Connection, paths: list[str], lengths: list[int], i: int, text: str) -> None:
    body = orjson.dumps({"offset": lengths[i], "text": text})
    status, data = await conn.request("POST", paths[i] + "/deltas", body)
    if status != 200:
        raise RuntimeError(f"delta answered {status}: {data[:300]!r}")
    lengths[i] = orjson.loads(data)["length"]


async def _naive(dsn: str, probe: Probe, size: str, deltas: int) -> Case:
    conn = await asyncpg.connect(dsn)
    table = "bench_naive_reply"
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.execute(f"CREATE TABLE {table} (id integer PRIMARY KEY, content text NOT NULL)")
        await conn.executemany(
            f"INSERT INTO {table} VALUES ($1, $2)", [(i, prose(SIZES[size], seed=i)) for i in range(REPLIES)]
        )
        update = f"UPDATE {table} SET content = content || $2 WHERE id = $1"

        async def send(n: int) -> None:
            await conn.execute(update, n % REPLIES, DELTA)

        return await _case(probe, "naive", size, deltas, send)
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.close()


async def measure(url: str, token: str, dsn: str, *, deltas: int, log: Callable[[str], None]) -> list[Case]:
    probe = await Probe.open(dsn)
    cases = []
    try:
        if not probe.walinspect:
            log("WAL per delta: no pg_walinspect; server-wide WAL position moves only (blurred by other databases)")
        for size in SIZES:
            cases.append(await _threadstore(url, token, probe, size, deltas))
            log(f"WAL per delta: {_line(cases[-1])}")
        for size in SIZES:
            cases.append(await _naive(dsn, probe, size, deltas))
            log(f"WAL per delta: {_line(cases[-1])}")
    finally:
        await probe.close()
    return cases


def _line(c: Case) -> str:
    return (
        f"{c.label}: median {c.median:,.0f} B ({c.median_without_fpi:,.0f} without FPI), mean {c.mean:,.0f} B,"
        f" {c.records:.1f} records, {c.transactions} transactions for {c.deltas} deltas, {c.images} with FPI;"
        f" server-wide median {c.server_wide_median:,.0f} B"
    )


def ratio(cases: list[Case], design: str) -> float:
    by = {c.key: c for c in cases}
    small, large = by[f"{design} 1 KB"], by[f"{design} 200 KB"]
    return large.median / small.median if small.median else float("inf")


def table(cases: list[Case]) -> tuple[list[str], bool]:
    rows = [
        "| design | reply holds | median bytes / delta | without FPI | mean bytes / delta | records / delta"
        " | transactions (deltas) | server-wide median |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        name = "threadstore (`POST …/deltas`)" if c.design == "threadstore" else "counterfactual: `content || $1`"
        rows.append(
            f"| {name} | {c.size} | **{c.median:,.0f}** | {c.median_without_fpi:,.0f} | {c.mean:,.0f}"
            f" | {c.records:.1f} | {c.transactions} ({c.deltas}) | {c.server_wide_median:,.0f} |"
        )
    ours, naive = ratio(cases, "threadstore"), ratio(cases, "naive")
    ok = ours <= MAX_RATIO
    rows += [
        "",
        f"threadstore, 200 KB ÷ 1 KB: **{ours:.2f}x** (target ≤ {MAX_RATIO}: {'ok' if ok else 'MISS'});"
        f" the counterfactual rewrite: {naive:.1f}x.",
    ]
    return rows, ok
