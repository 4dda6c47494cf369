"""Write amplification: what each write costs PostgreSQL in WAL and on disk, threadstore against the yardstick.

With both servers up and otherwise idle, one app at a time:

1. **WAL per write**: sequential requests over one keep-alive client (create thread, append a 420-character
   message, PATCH metadata); the WAL position (`pg_current_wal_insert_lsn()`), `pg_stat_wal` and the rows
   inserted into threadstore's `events` table are read around each batch over a connection of our own.
2. **HOT updates**: `pg_stat_user_tables` (n_tup_upd, n_tup_hot_upd) around the same batches.
3. **Bytes stored per message**: 10,000 appends of the same 420 characters to a fresh thread, every table of the
   app vacuumed and sized (`pg_total_relation_size`) before and after.

The WAL position and `pg_stat_wal` are server-wide: a window holds whatever else the server wrote meanwhile,
and on a shared server other sessions' test suites can write far more than the batch. So when pg_walinspect
(contrib) can be had, each window is also read record by record and only this database's records count: those
on its blocks and the commit records of their transactions; these are the figures compared, the server-wide
ones are shown beside them. A temporary replication slot keeps each window's WAL until it has been read.
Full-page images depend on when the last checkpoint ran, not on the write: a CHECKPOINT runs before each app's
warm-up, whose pages are the ones then written (so they have had their image), and the bytes without images
are compared as well. PostgreSQL 15 reports an idle backend's statistics (pg_stat_wal, pg_stat_user_tables)
only up to 10 s after its last transaction, and threadstore's publisher notifies other instances after the
request's commit: each window closes a settle time after its last request, and the warm-up is followed by one.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
from endpoints import CREATE_BODY, PATCH_BODY

from threadstore.auth import issue_token

USER = "walbench"  # a user of its own: the seeded users' lists stay as the load expects them
TEXT = (
    "Day one could start in Belem: the monastery opens at ten, and the queue is shorter on weekdays. Take a tram"
    " back along the river, stop for custard tarts, and let the kids run in the gardens by the tower. If it rains"
    " in the afternoon, the aquarium at Parque das Nacoes is a safe bet and takes two hours. For dinner, the small"
    " places around Campo de Ourique are calm, serve early and have simple dishes that children like."
)
assert len(TEXT) == len(TEXT.encode()) == 420, len(TEXT)
APPEND_BODY = json.dumps({"role": "user", "content": TEXT})

APPS = ("ts", "ys")
KINDS = ("create_thread", "append_message", "patch_metadata")
LABELS = {"create_thread": "create thread", "append_message": "append message", "patch_metadata": "patch metadata"}
# The issue's targets: threadstore's WAL per write within 1.5x the yardstick's (create, append), and at most
# 3x the text stored per 420-character message.
MAX_WAL_RATIO = 1.5
WAL_TARGETS = ("create_thread", "append_message")
MAX_STORED_RATIO = 3.0
WARMUP = 20  # requests of each kind per app before its windows
CONCURRENCY = 8  # appends in flight while filling the 10,000-message thread


def _body(template: str) -> str:
    """A bench body: "%R" becomes a random number, as bench/request.lua does."""
    return template.replace("%R", str(random.randint(1, 1_000_000_000)))


@dataclass(frozen=True)
class Snapshot:
    lsn: int  # asyncpg reads pg_lsn as an integer: the byte position in the WAL
    records: int
    fpi: int
    checkpoints: int
    tables: dict[str, tuple[int, int]]  # table -> (n_tup_upd, n_tup_hot_upd)
    events: int  # rows ever inserted into threadstore's events table (pg_stat_user_tables.n_tup_ins)


@dataclass(frozen=True)
class DatabaseWal:
    """The window's WAL records on this database's blocks, with the commit records of their transactions."""

    records: int
    bytes: int  # each record MAXALIGNed, as laid out in the WAL (page headers aside)
    fpi_bytes: int  # full-page images among them
    images: int
    window_bytes: int  # every record of the window, any database: what is left is other databases'


@dataclass(frozen=True)
class Window:
    """What one batch of requests wrote, as seen between two snapshots."""

    requests: int
    seconds: float  # the requests alone, without the settle time
    wal_bytes: int  # server-wide: WAL position difference
    records: int  # server-wide: pg_stat_wal
    fpi: int  # server-wide: pg_stat_wal
    events: int
    updates: dict[str, tuple[int, int]]  # table -> (updates, HOT updates) in the window, tables that moved only
    checkpoints: int  # checkpoints that ran in the window
    database: DatabaseWal | None = None  # from pg_walinspect

    def per_request(self, value: float) -> float:
        return value / self.requests if self.requests else 0.0

    @property
    def compared_bytes(self) -> int:
        return self.database.bytes if self.database else self.wal_bytes

    @property
    def compared_records(self) -> int:
        return self.database.records if self.database else self.records

    @property
    def compared_images(self) -> int:
        return self.database.images if self.database else self.fpi


@dataclass(frozen=True)
class Stored:
    """Sizes of an app's tables (with indexes, TOAST and every fork) before and after its appends."""

    messages: int
    seconds: float
    before: dict[str, int]
    after: dict[str, int]

    @property
    def growth(self) -> int:
        return sum(self.after.values()) - sum(self.before.values())

    @property
    def per_message(self) -> float:
        return self.growth / self.messages if self.messages else 0.0


@dataclass
class WalResult:
    requests: int
    settle: float
    walinspect: bool
    windows: dict[str, dict[str, Window]] = field(default_factory=dict)  # kind -> app -> window
    stored: dict[str, Stored] = field(default_factory=dict)  # app -> sizes
    warnings: list[str] = field(default_factory=list)


# block_ref reads "blkref #0: rel SPCNODE/DBNODE/RELNODE fork main blk N (FPW); …" ($3 matches this database).
# A transaction's commit record has no block reference: it counts when the transaction wrote blocks here.
_THIS_DATABASE = """
WITH r AS (
    SELECT xid::text::bigint AS xid, (record_length + 7) / 8 * 8 AS bytes, fpi_length,
           (length(block_ref) - length(replace(block_ref, 'FPW', ''))) / 3 AS images,
           coalesce(block_ref ~ $3, false) AS here
    FROM pg_get_wal_records_info($1::pg_lsn, $2::pg_lsn)
), x AS (SELECT DISTINCT xid FROM r WHERE here AND xid <> 0)
SELECT count(*) FILTER (WHERE mine) AS records,
       coalesce(sum(bytes) FILTER (WHERE mine), 0) AS bytes,
       coalesce(sum(fpi_length) FILTER (WHERE mine), 0) AS fpi_bytes,
       coalesce(sum(images) FILTER (WHERE mine), 0) AS images,
       coalesce(sum(bytes), 0) AS window_bytes
FROM (SELECT *, here OR xid IN (SELECT xid FROM x) AS mine FROM r) AS t
"""


class Probe:
    """The measuring connection: the bench database, apart from both apps' pools."""

    def __init__(self, conn: asyncpg.Connection, walinspect: bool, oid: int) -> None:
        self.conn = conn
        self.walinspect = walinspect
        self.oid = oid
        self.slot = f"threadstore_wal_{os.getpid()}_{oid}"  # one per database: a run may probe several

    @classmethod
    async def open(cls, dsn: str) -> Probe:
        conn = await asyncpg.connect(dsn)
        oid = int(await conn.fetchval("SELECT oid FROM pg_database WHERE datname = current_database()"))
        probe = cls(conn, False, oid)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_walinspect")
            # Temporary: dropped with this connection, however the run ends.
            await conn.execute("SELECT pg_create_physical_replication_slot($1, true, true)", probe.slot)
            probe.walinspect = True
        except asyncpg.PostgresError:  # not installed (contrib), not allowed, no free slot: server-wide figures
            pass
        return probe

    async def close(self) -> None:
        await self.conn.close()

    async def snapshot(self) -> Snapshot:
        # Each statement is its own transaction, so the statistics are read fresh (stats_fetch_consistency).
        row = await self.conn.fetchrow(
            "SELECT pg_current_wal_insert_lsn() AS lsn, w.wal_records, w.wal_fpi,"
            " b.checkpoints_timed + b.checkpoints_req AS checkpoints FROM pg_stat_wal w, pg_stat_bgwriter b"
        )
        assert row is not None
        # Statistics rather than count(*): a scan of the events table could prune its pages, i.e. write WAL.
        stats = await self.conn.fetch("SELECT relname, n_tup_ins, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables")
        tables = {r["relname"]: (int(r["n_tup_upd"]), int(r["n_tup_hot_upd"])) for r in stats}
        events = next((int(r["n_tup_ins"]) for r in stats if r["relname"] == "events"), 0)
        return Snapshot(int(row["lsn"]), int(row["wal_records"]), int(row["wal_fpi"]), int(row["checkpoints"]), tables,
                        events)  # fmt: skip

    async def window(self, before: Snapshot, after: Snapshot, requests: int, seconds: float) -> Window:
        updates = {}
        for table, (upd, hot) in after.tables.items():
            was_upd, was_hot = before.tables.get(table, (0, 0))
            if upd != was_upd:
                updates[table] = (upd - was_upd, hot - was_hot)
        database = await self._inspect(before.lsn, after.lsn) if self.walinspect else None
        return Window(
            requests=requests, seconds=seconds, wal_bytes=after.lsn - before.lsn,
            records=after.records - before.records, fpi=after.fpi - before.fpi, events=after.events - before.events,
            updates=updates, checkpoints=after.checkpoints - before.checkpoints, database=database,
        )  # fmt: skip

    async def _inspect(self, start: int, end: int) -> DatabaseWal:
        for _ in range(50):  # pg_walinspect reads only flushed WAL; the WAL writer flushes within 200 ms
            if await self.conn.fetchval("SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn", end):
                break
            await asyncio.sleep(0.1)
        row = await self.conn.fetchrow(_THIS_DATABASE, start, end, f"rel [0-9]+/{self.oid}/")
        assert row is not None
        # The slot may let go of what has been read.
        await self.conn.execute("SELECT pg_replication_slot_advance($1, $2::pg_lsn)", self.slot, end)
        return DatabaseWal(*(int(row[k]) for k in ("records", "bytes", "fpi_bytes", "images", "window_bytes")))

    async def checkpoint(self) -> None:
        await self.conn.execute("CHECKPOINT")

    async def tables(self, app: str) -> list[str]:
        """threadstore: every table it has (new tables count without a change here); the yardstick: its two."""
        rows = await self.conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        names = sorted(r["tablename"] for r in rows)
        if app == "ys":
            return [n for n in names if n.startswith("ys_")]
        return [n for n in names if not n.startswith("ys_") and n != "alembic_version"]

    async def vacuumed_sizes(self, tables: list[str]) -> dict[str, int]:
        for table in tables:
            await self.conn.execute(f'VACUUM "{table}"')
        size = "SELECT pg_total_relation_size($1::regclass)"
        return {t: int(await self.conn.fetchval(size, f'"{t}"')) for t in tables}


async def _send(client: httpx.AsyncClient, method: str, path: str, body: str) -> dict[str, Any]:
    response = await client.request(method, path, content=body, headers={"Content-Type": "application/json"})
    if response.status_code // 100 != 2:
        raise RuntimeError(f"{method} {path} answered {response.status_code}: {response.text[:300]}")
    data: dict[str, Any] = response.json()
    return data


async def _create(client: httpx.AsyncClient) -> str:
    return str((await _send(client, "POST", "/api/threads", _body(CREATE_BODY)))["id"])


def _request(kind: str, threads: list[str], n: int) -> tuple[str, str, str]:
    if kind == "create_thread":
        return "POST", "/api/threads", _body(CREATE_BODY)
    thread = threads[n % len(threads)]
    if kind == "append_message":
        return "POST", f"/api/threads/{thread}/messages", APPEND_BODY
    return "PATCH", f"/api/threads/{thread}", _body(PATCH_BODY)


async def _app_windows(
    client: httpx.AsyncClient, probe: Probe, requests: int, settle: float, log: Callable[[str], None], app: str
) -> dict[str, Window]:
    # The CHECKPOINT, then the warm-up, whose threads are the ones appended to and patched below: their pages
    # have had their full-page image when the windows open.
    await probe.checkpoint()
    threads = [await _create(client) for _ in range(WARMUP)]
    for kind in KINDS[1:]:
        for n in range(WARMUP):
            await _send(client, *_request(kind, threads, n))
    await asyncio.sleep(settle)
    windows = {}
    for kind in KINDS:
        before = await probe.snapshot()
        started = time.monotonic()
        for n in range(requests):
            await _send(client, *_request(kind, threads, n))
        seconds = time.monotonic() - started
        await asyncio.sleep(settle)  # deferred work and statistics land in this window, not the next
        w = windows[kind] = await probe.window(before, await probe.snapshot(), requests, seconds)
        images = f"{w.per_request(w.compared_images):.2f} FPI/req"
        bare = f", {w.per_request(w.database.bytes - w.database.fpi_bytes):,.0f} B/req without" if w.database else ""
        log(f"wal {LABELS[kind]:15} {app}: {w.per_request(w.compared_bytes):7,.0f} B/req"
            f" {w.per_request(w.compared_records):5.1f} records/req, {images}{bare} ({requests} in {seconds:.1f} s;"
            f" server-wide {w.per_request(w.wal_bytes):,.0f} B/req, {w.checkpoints} checkpoints)")  # fmt: skip
    return windows


async def _fill(client: httpx.AsyncClient, thread: str, messages: int) -> None:
    counter = iter(range(messages))

    async def worker() -> None:
        for _ in counter:
            await _send(client, "POST", f"/api/threads/{thread}/messages", APPEND_BODY)

    async with asyncio.TaskGroup() as group:  # a failed append cancels the others
        for _ in range(CONCURRENCY):
            group.create_task(worker())


async def _app_stored(
    client: httpx.AsyncClient, probe: Probe, app: str, messages: int, log: Callable[[str], None]
) -> Stored:
    tables = await probe.tables(app)
    thread = await _create(client)
    before = await probe.vacuumed_sizes(tables)
    started = time.monotonic()
    await _fill(client, thread, messages)
    seconds = time.monotonic() - started
    if app == "ts":  # the publisher's own writes after the requests (a NOTIFY, a recorded horizon) land first
        await asyncio.sleep(1.0)
    stored = Stored(messages, seconds, before, await probe.vacuumed_sizes(tables))
    log(f"stored {app}: {messages:,} appends in {seconds:.0f} s, {stored.per_message:,.0f} B per message")
    return stored


async def measure(
    urls: dict[str, str],
    secret: str,
    dsn: str,
    *,
    requests: int,
    messages: int,
    settle: float,
    log: Callable[[str], None],
) -> WalResult:
    """Runs the phase on both apps (threadstore first, then the yardstick) and returns every window."""
    probe = await Probe.open(dsn)
    result = WalResult(requests=requests, settle=settle, walinspect=probe.walinspect)
    headers = {"Authorization": f"Bearer {issue_token(secret, USER, None)}"}
    try:
        for app in APPS:
            async with httpx.AsyncClient(base_url=urls[app], headers=headers, timeout=30) as client:
                for kind, window in (await _app_windows(client, probe, requests, settle, log, app)).items():
                    result.windows.setdefault(kind, {})[app] = window
                if messages:
                    result.stored[app] = await _app_stored(client, probe, app, messages, log)
    finally:
        await probe.close()
    result.warnings = _warnings(result)
    return result


def run(urls: dict[str, str], secret: str, dsn: str, **kwargs: Any) -> WalResult:
    return asyncio.run(measure(urls, secret, dsn, **kwargs))


def _warnings(result: WalResult) -> list[str]:
    """What makes a figure untrustworthy, checked rather than assumed."""
    out = []
    for kind, apps in result.windows.items():
        for app, w in apps.items():
            table = "threads" if app == "ts" else "ys_threads"
            if kind != "create_thread" and w.updates.get(table, (0, 0))[0] < w.requests:
                out.append(
                    f"{LABELS[kind]}, {app}: {w.updates.get(table, (0, 0))[0]} updates of {table} counted for"
                    f" {w.requests} requests: statistics not all reported yet (raise --wal-settle)"
                )
    return out


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


def wal_table(result: WalResult) -> tuple[str, bool]:
    """The compared figures: this database's records when pg_walinspect was there, else server-wide ones."""
    rows = [
        "| write | threadstore B/req | yardstick B/req | ratio | ts records/req | ys records/req | ts FPI/req"
        " | ys FPI/req | ts B/req without FPIs | ys B/req without FPIs | ratio without FPIs | ts events/req"
        " | ts B/event | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    all_ok = True
    for kind in KINDS:
        if kind not in result.windows:
            continue
        ts, ys = result.windows[kind]["ts"], result.windows[kind]["ys"]
        ratio = _ratio(ts.compared_bytes, ys.compared_bytes)
        judged = ratio
        bare = ["n/a"] * 3
        if ts.database and ys.database:
            ts_bare, ys_bare = ts.database.bytes - ts.database.fpi_bytes, ys.database.bytes - ys.database.fpi_bytes
            judged = _ratio(ts_bare, ys_bare)
            bare = [f"{ts.per_request(ts_bare):,.0f}", f"{ys.per_request(ys_bare):,.0f}", f"**{judged:.2f}**"]
        per_event = f"{ts.compared_bytes / ts.events:,.0f}" if ts.events else "n/a"
        if kind in WAL_TARGETS:
            ok = judged <= MAX_WAL_RATIO
            all_ok &= ok
            verdict = f"{_mark(ok)} (≤ {MAX_WAL_RATIO})"
        else:
            verdict = "(informative)"
        cells = [
            LABELS[kind], f"{ts.per_request(ts.compared_bytes):,.0f}", f"{ys.per_request(ys.compared_bytes):,.0f}",
            f"**{ratio:.2f}**", f"{ts.per_request(ts.compared_records):.1f}",
            f"{ys.per_request(ys.compared_records):.1f}", f"{ts.per_request(ts.compared_images):.2f}",
            f"{ys.per_request(ys.compared_images):.2f}", *bare, f"{ts.per_request(ts.events):.2f}", per_event, verdict,
        ]  # fmt: skip
        rows.append(f"| {' | '.join(cells)} |")
    return "\n".join(rows), all_ok


def server_table(result: WalResult) -> str:
    """The server-wide figures of the same windows: everything the server wrote, this run or not."""
    rows = [
        "| write | app | WAL position B/req | pg_stat_wal records/req | pg_stat_wal FPI/req | this database's share"
        " | checkpoints in window | requests/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for kind in KINDS:
        for app, w in result.windows.get(kind, {}).items():
            share = f"{100 * w.database.bytes / w.database.window_bytes:.0f} %" if w.database else "n/a"
            rows.append(
                f"| {LABELS[kind]} | {app} | {w.per_request(w.wal_bytes):,.0f} | {w.per_request(w.records):.1f} |"
                f" {w.per_request(w.fpi):.2f} | {share} | {w.checkpoints} | {_ratio(w.requests, w.seconds):,.0f} |"
            )
    return "\n".join(rows)


def hot_table(result: WalResult) -> str:
    """Every table an app updated in the append and PATCH windows: updates per request and the HOT share."""
    rows = ["| write | app | table | updates/req | HOT updates/req | HOT % |", "|---|---|---|---:|---:|---:|"]
    for kind in KINDS[1:]:
        for app, w in result.windows.get(kind, {}).items():
            mine = {t: u for t, u in w.updates.items() if t.startswith("ys_") == (app == "ys")}
            for table, (upd, hot) in sorted(mine.items()):
                rows.append(
                    f"| {LABELS[kind]} | {app} | {table} | {w.per_request(upd):.2f} | {w.per_request(hot):.2f} |"
                    f" {100 * hot / upd:.0f} % |"
                )
    return "\n".join(rows)


def stored_table(result: WalResult) -> tuple[str, bool]:
    rows = [
        "| app | table | before (vacuumed) | after (vacuumed) | growth | B per message |",
        "|---|---|---:|---:|---:|---:|",
    ]
    all_ok = True
    summary = ["| app | B per message | x the 420-character text | target |", "|---|---:|---:|---|"]
    for app in APPS:
        stored = result.stored.get(app)
        if stored is None:
            continue
        for table in stored.before:
            growth = stored.after[table] - stored.before[table]
            rows.append(
                f"| {app} | {table} | {stored.before[table]:,} | {stored.after[table]:,} | {growth:,} |"
                f" {growth / stored.messages:,.0f} |"
            )
        times = stored.per_message / len(TEXT)
        if app == "ts":
            ok = times <= MAX_STORED_RATIO
            all_ok &= ok
            verdict = f"{_mark(ok)} (≤ {MAX_STORED_RATIO:g})"
        else:
            verdict = "(reference)"
        summary.append(f"| {app} | {stored.per_message:,.0f} | **{times:.2f}** | {verdict} |")
    return "\n".join(summary) + "\n\n" + "\n".join(rows), all_ok


def sections(result: WalResult) -> tuple[list[str], bool]:
    """The report's section: the tables, how they were measured, and any warning."""
    wal, ok1 = wal_table(result)
    stored, ok2 = stored_table(result)
    if result.walinspect:
        source = (
            "B/req, records/req and FPI/req are this database's WAL records (pg_walinspect: records on its blocks"
            " and the commit records of their transactions, each MAXALIGNed); the target is judged without"
            " full-page images, which depend on when the last checkpoint ran rather than on the write"
        )
    else:
        source = (
            "pg_walinspect unavailable: B/req is the WAL position difference and records/req, FPI/req come from"
            " pg_stat_wal, server-wide, so anything else the server wrote meanwhile counts too"
        )
    out = [
        "## Write amplification (both servers up, otherwise idle)",
        "",
        f"{result.requests} sequential requests per write and app over one keep-alive client, after a CHECKPOINT"
        f" and {WARMUP} requests of each write; appends ({len(TEXT)} characters) and PATCHes go round-robin to"
        f" the {WARMUP} warm-up threads of user `{USER}`. Each window closes {result.settle:g} s after its last"
        f" request. {source}. Ratio = threadstore ÷ yardstick; B/event = threadstore's B/req ÷ events rows"
        " it inserted per request (`n_tup_ins` of `events`).",
        "",
        wal,
        "",
        "Server-wide, the same windows (`pg_current_wal_insert_lsn()`, `pg_stat_wal`, `pg_stat_bgwriter`):",
        "",
        server_table(result),
        "",
        "### HOT updates (pg_stat_user_tables, same windows)",
        "",
        hot_table(result),
    ]
    if result.stored:
        messages = next(iter(result.stored.values())).messages
        out += [
            "",
            f"### Bytes stored per message: {messages:,} appends of {len(TEXT)} characters to a fresh thread",
            "",
            f"{CONCURRENCY} in flight; every table of the app vacuumed and sized with `pg_total_relation_size`"
            " (indexes, TOAST, every fork) before and after; growth ÷ appends. threadstore: every table but"
            " alembic_version (events within retention included); yardstick: ys_threads + ys_messages.",
            "",
            stored,
        ]
    if result.warnings:
        out += ["", "Warnings:", "", *(f"- {w}" for w in result.warnings)]
    return out, ok1 and ok2
