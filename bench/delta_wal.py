"""WAL per delta (issue 17, item 1): what one 40-character delta costs PostgreSQL when its reply already holds
1 KB and when it holds 200 KB, through threadstore's HTTP API; and, as the counterfactual the design avoids,
the same deltas as `UPDATE … SET content = content || $1` of a text column on a scratch table.

A window holds both sizes: 20 replies (rows) of each are made alternately and brought to their size (a reply
by deltas of 51,200 characters, as a streamed reply grows), a CHECKPOINT runs, each gets one unmeasured delta
(its pages have had their full-page image), then 400 deltas alternate between the sizes, each size's going
round its 20 replies (10 each: a reply grows by at most 400 characters in the window). So both sizes meet the
same server state: the same checkpoints, other sessions' snapshots, free space in the tables.

The window's WAL is read back with pg_walinspect through the probe of bench/amplification.py: only this
database's records count (records on its blocks, and the commit records of their transactions), each assigned
to the delta during whose request it was inserted (the WAL insert position is read around each request). Per
size: the median bytes per delta, the median without full-page images, the mean, how many of the updates of the
reply's row were HOT (the new version on the same page: no index entry, and no page touched for the first time
since the checkpoint), and the full-page images by relation. Beside it, the server-wide median of the WAL
position's move around each request, which other databases on a shared server blur.

Before each window the bench waits until no other session of this database holds a snapshot (an automatic
ANALYZE of a table just seeded holds one for seconds): a snapshot keeps every newer row version, so the reply
row's page fills with old versions and its updates leave the page. The third window shows that on purpose:
another session holds a snapshot open throughout, as a long report query or a replica's hot_standby_feedback
would.

The text is random words (seeded), compressible about as prose is: PostgreSQL compresses a TOASTed value, so a
text of one repeated character would make the counterfactual look cheap.
"""

from __future__ import annotations

import asyncio
import bisect
import random
import statistics
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import asyncpg
import orjson
from amplification import TEXT as PROSE
from amplification import Probe
from rawhttp import Connection
from streaming import TEXT as DELTA

REPLIES = 20  # per size
KIB = 1024
SIZES = {"1 KB": KIB, "200 KB": 200 * KIB}
FILL_CHUNK = 51_200  # characters per filling delta (the API takes up to 65,536)
MAX_RATIO = 1.5  # the target: a delta at 200 KB within 1.5x the WAL of one at 1 KB
SETTLE_SECONDS = 60.0
NAIVE_TABLE = "bench_naive_reply"
_WORDS = sorted(set(PROSE.replace(",", "").replace(".", "").replace(":", "").split()))

# This database's records in the window (block_ref names its OID, $3) and the records of their transactions
# without a block (commits); block_ref reads "blkref #0: rel SPC/DB/RELFILENODE fork main blk N (FPW); …".
_RECORDS = """
WITH r AS (
    SELECT (start_lsn - '0/0'::pg_lsn)::bigint AS lsn, xid::text::bigint AS xid,
           resource_manager || ':' || record_type AS kind, (record_length + 7) / 8 * 8 AS bytes, fpi_length,
           (length(block_ref) - length(replace(block_ref, 'FPW', ''))) / 3 AS images,
           (regexp_match(block_ref, 'rel [0-9]+/' || $3 || '/([0-9]+)'))[1] AS filenode,
           coalesce(block_ref ~ ('rel [0-9]+/' || $3 || '/'), false) AS here
    FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn)
), x AS (SELECT DISTINCT xid FROM r WHERE here AND xid <> 0)
SELECT lsn, kind, bytes, fpi_length, images, filenode FROM r
WHERE here OR (xid <> 0 AND xid IN (SELECT xid FROM x)) ORDER BY lsn
"""
_CHECKPOINTS = "SELECT checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
_HOLDERS = """
SELECT backend_type || ': ' || left(regexp_replace(query, '\\s+', ' ', 'g'), 60) FROM pg_stat_activity
WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_xmin IS NOT NULL
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
class Record:
    lsn: int
    kind: str  # resource manager:record type
    bytes: int
    fpi_bytes: int
    images: int
    relation: str  # of its first block; "" for a commit


@dataclass(frozen=True)
class Case:
    design: str  # "threadstore" or "naive"
    size: str
    snapshot: bool  # another session held a snapshot open through the window
    deltas: int
    median: float  # bytes per delta
    median_without_fpi: float
    mean: float
    records: float  # per delta
    hot: int  # updates of the reply's row that were HOT (same page, no index entry) …
    cold: int  # … and those that were not
    images_by_relation: dict[str, int]  # full-page images, by relation
    checkpoints: int  # that ran during the window (shared by both sizes)
    holders: list[str]  # sessions of this database seen holding a snapshot at the window's start or end
    server_wide_median: float  # WAL position's move around each request

    @property
    def key(self) -> str:
        return f"{self.design} {self.size}{' snapshot' if self.snapshot else ''}"

    @property
    def label(self) -> str:
        return f"{self.design} at {self.size}{', a snapshot held open' if self.snapshot else ''}"


# One delta of a given size: sends it, returns when it is acknowledged.
Send = tuple[str, Callable[[], Awaitable[None]]]


async def _records(probe: Probe, start: int, end: int, names: dict[str, str]) -> list[Record]:
    for _ in range(50):  # pg_walinspect reads only flushed WAL; the WAL writer flushes within 200 ms
        if await probe.conn.fetchval("SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn", end):
            break
        await asyncio.sleep(0.1)
    rows = await probe.conn.fetch(_RECORDS, start, end, str(probe.oid))
    await probe.conn.execute("SELECT pg_replication_slot_advance($1, $2::pg_lsn)", probe.slot, end)
    return [
        Record(int(r["lsn"]), r["kind"], int(r["bytes"]), int(r["fpi_length"]), int(r["images"]),
               names.get(r["filenode"] or "", r["filenode"] or ""))
        for r in rows
    ]  # fmt: skip


async def _settle(probe: Probe) -> None:
    for _ in range(round(SETTLE_SECONDS / 0.5)):
        if not await probe.conn.fetch(_HOLDERS):
            return
        await asyncio.sleep(0.5)


async def _window(
    probe: Probe, dsn: str, design: str, table: str, sends: list[Send], warmup: list[Send], *, snapshot: bool
) -> list[Case]:
    """Runs `sends` one after another (after `warmup`); a Case per size. `table`: the one whose row a delta
    updates."""
    await _settle(probe)
    checkpoints = int(await probe.conn.fetchval(_CHECKPOINTS))
    await probe.checkpoint()
    for _, send in warmup:
        await send()
    holder = await asyncpg.connect(dsn) if snapshot else None
    lsn = "SELECT pg_current_wal_insert_lsn()"
    try:
        if holder is not None:
            await holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            await holder.fetchval("SELECT count(*) FROM pg_class")  # takes the snapshot
        holders = {r[0] for r in await probe.conn.fetch(_HOLDERS)}
        bounds: list[tuple[int, int]] = []
        for _, send in sends:
            before = int(await probe.conn.fetchval(lsn))
            await send()
            bounds.append((before, int(await probe.conn.fetchval(lsn))))
        checkpoints = max(0, int(await probe.conn.fetchval(_CHECKPOINTS)) - checkpoints - 1)  # ours is done
        holders |= {r[0] for r in await probe.conn.fetch(_HOLDERS)}
    finally:
        if holder is not None:
            await holder.close()
    rows = await probe.conn.fetch("SELECT relfilenode::text, relname FROM pg_class WHERE relfilenode <> 0")
    names = {r[0]: r[1] for r in rows}
    records = await _records(probe, bounds[0][0], bounds[-1][1], names) if probe.walinspect else []
    starts = [r.lsn for r in records]
    per_delta: list[list[Record]] = []
    for before, after in bounds:
        per_delta.append(records[bisect.bisect_left(starts, before) : bisect.bisect_left(starts, after)])
    cases = []
    for size in SIZES:
        mine = [n for n, (s, _) in enumerate(sends) if s == size]
        moves = [bounds[n][1] - bounds[n][0] for n in mine]
        own = [per_delta[n] for n in mine] if probe.walinspect else [[Record(0, "", m, 0, 0, "")] for m in moves]
        totals = [sum(r.bytes for r in d) for d in own]
        images: Counter[str] = Counter()
        for d in own:
            for r in d:
                images[r.relation] += r.images
        updates = [r.kind for d in own for r in d if r.relation == table]
        cases.append(Case(
            design=design, size=size, snapshot=snapshot, deltas=len(mine),
            median=float(statistics.median(totals)),
            median_without_fpi=float(statistics.median(sum(r.bytes - r.fpi_bytes for r in d) for d in own)),
            mean=statistics.fmean(totals), records=sum(len(d) for d in own) / len(mine),
            hot=sum(1 for k in updates if k.startswith("Heap:HOT_UPDATE")),
            cold=sum(1 for k in updates if k.startswith("Heap:UPDATE")),
            images_by_relation={k: v for k, v in images.most_common() if v}, checkpoints=checkpoints,
            holders=sorted(holders), server_wide_median=float(statistics.median(moves)),
        ))  # fmt: skip
    return cases


def _alternate(per_size: dict[str, list[Callable[[], Awaitable[None]]]], deltas: int) -> list[Send]:
    """`deltas` per size, alternating sizes, each size's going round its replies."""
    return [
        (size, senders[n % len(senders)]) for n in range(deltas) for size, senders in per_size.items()
    ]  # fmt: skip


async def _threadstore(url: str, token: str, probe: Probe, dsn: str, deltas: int, *, snapshot: bool) -> list[Case]:
    conn = Connection(url, token)
    paths: list[str] = []
    lengths: list[int] = []  # acknowledged, per reply

    async def delta(i: int, text: str) -> None:
        status, data = await conn.request(
            "POST", paths[i] + "/deltas", orjson.dumps({"offset": lengths[i], "text": text})
        )
        if status != 200:
            raise RuntimeError(f"delta answered {status}: {data[:300]!r}")
        lengths[i] = orjson.loads(data)["length"]

    per_size: dict[str, list[Callable[[], Awaitable[None]]]] = {size: [] for size in SIZES}
    try:
        for n in range(REPLIES):
            for size, characters in SIZES.items():  # alternately: both sizes' rows land alike
                _, data = await conn.request("POST", "/api/threads", orjson.dumps({"title": f"wal delta {size}"}))
                thread_id = orjson.loads(data)["id"]
                body = orjson.dumps({"role": "assistant", "content": "", "status": "in_progress"})
                status, data = await conn.request("POST", f"/api/threads/{thread_id}/messages", body)
                if status != 201:
                    raise RuntimeError(f"starting a reply answered {status}: {data[:300]!r}")
                i = len(paths)
                paths.append(f"/api/threads/{thread_id}/messages/{orjson.loads(data)['id']}")
                lengths.append(0)
                text = prose(characters, seed=n)
                for start in range(0, len(text), FILL_CHUNK):
                    await delta(i, text[start : start + FILL_CHUNK])
                per_size[size].append(partial(delta, i, DELTA))
        cases = await _window(probe, dsn, "threadstore", "messages", _alternate(per_size, deltas),
                              _alternate(per_size, REPLIES), snapshot=snapshot)  # fmt: skip
        for i, path in enumerate(paths):  # closed: the stale sweep will not end them during a later phase
            _, data = await conn.request("GET", path)
            if len(orjson.loads(data)["content"]) != lengths[i]:
                raise RuntimeError(f"reply {path} does not read back as its deltas")
            await conn.request("PATCH", path, orjson.dumps({"status": "completed"}))
        return cases
    finally:
        conn.close()


async def _naive(dsn: str, probe: Probe, deltas: int) -> list[Case]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {NAIVE_TABLE}")
        await conn.execute(f"CREATE TABLE {NAIVE_TABLE} (id integer PRIMARY KEY, content text NOT NULL)")
        update = f"UPDATE {NAIVE_TABLE} SET content = content || $2 WHERE id = $1"

        async def delta(row: int) -> None:
            await conn.execute(update, row, DELTA)

        per_size: dict[str, list[Callable[[], Awaitable[None]]]] = {size: [] for size in SIZES}
        rows: list[tuple[int, str]] = []
        for n in range(REPLIES):
            for size, characters in SIZES.items():
                row = len(rows)
                rows.append((row, prose(characters, seed=n)))
                per_size[size].append(partial(delta, row))
        await conn.executemany(f"INSERT INTO {NAIVE_TABLE} VALUES ($1, $2)", rows)
        return await _window(probe, dsn, "naive", NAIVE_TABLE, _alternate(per_size, deltas),
                             _alternate(per_size, REPLIES), snapshot=False)  # fmt: skip
    finally:
        await conn.execute(f"DROP TABLE IF EXISTS {NAIVE_TABLE}")
        await conn.close()


async def measure(url: str, token: str, dsn: str, *, deltas: int, log: Callable[[str], None]) -> list[Case]:
    probe = await Probe.open(dsn)
    cases: list[Case] = []
    try:
        if not probe.walinspect:
            log("WAL per delta: no pg_walinspect; server-wide WAL position moves only (blurred by other databases)")
        # Fresh statistics, so that no automatic ANALYZE of a table just seeded starts during a window.
        await probe.conn.execute("ANALYZE")
        for window in (
            _threadstore(url, token, probe, dsn, deltas, snapshot=False),
            _threadstore(url, token, probe, dsn, deltas, snapshot=True),
            _naive(dsn, probe, deltas),
        ):
            found = await window
            cases += found
            for case in found:
                log(f"WAL per delta: {_line(case)}")
    finally:
        await probe.close()
    return cases


def _line(c: Case) -> str:
    images = ", ".join(f"{k} {v}" for k, v in c.images_by_relation.items()) or "none"
    return (
        f"{c.label}: median {c.median:,.0f} B ({c.median_without_fpi:,.0f} without FPI), mean {c.mean:,.0f} B,"
        f" {c.records:.1f} records; row updates {c.hot} HOT, {c.cold} not; full-page images: {images};"
        f" {c.checkpoints} checkpoints; snapshots held by {'; '.join(c.holders) or 'no other session'};"
        f" server-wide median {c.server_wide_median:,.0f} B"
    )


def ratio(cases: list[Case], design: str, *, snapshot: bool = False) -> float:
    by = {c.key: c for c in cases}
    suffix = " snapshot" if snapshot else ""
    small, large = by[f"{design} 1 KB{suffix}"], by[f"{design} 200 KB{suffix}"]
    return large.median / small.median if small.median else float("inf")


def table(cases: list[Case]) -> tuple[list[str], bool]:
    rows = [
        "| design | reply holds | median bytes / delta | without FPI | mean | records / delta"
        " | row updates HOT / not | full-page images | server-wide median |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cases:
        name = "threadstore (`POST …/deltas`)" if c.design == "threadstore" else "counterfactual: `content || $1`"
        size = f"{c.size}, another session's snapshot open" if c.snapshot else c.size
        rows.append(
            f"| {name} | {size} | **{c.median:,.0f}** | {c.median_without_fpi:,.0f} | {c.mean:,.0f}"
            f" | {c.records:.1f} | {c.hot} / {c.cold} | {sum(c.images_by_relation.values())}"
            f" | {c.server_wide_median:,.0f} |"
        )
    ours, held, naive = ratio(cases, "threadstore"), ratio(cases, "threadstore", snapshot=True), ratio(cases, "naive")
    ok = ours <= MAX_RATIO
    rows += [
        "",
        f"200 KB ÷ 1 KB, median: threadstore **{ours:.2f}x** (target ≤ {MAX_RATIO}: {'ok' if ok else 'MISS'}); with"
        f" a snapshot held open {held:.2f}x; the counterfactual rewrite {naive:.1f}x.",
    ]
    return rows, ok
