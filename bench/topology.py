"""bench/run --topology: threadstore in the deployments of issue 15, side by side on one primary in one run.

- direct: one instance straight to PostgreSQL;
- pgbouncer: one instance through PgBouncer in transaction mode;
- pgbouncer2: two instances through one PgBouncer;
- replica2: two instances through PgBouncer whose reads that may lag go to a streaming replica.

The primary and its replica are a private pair (tests/harness/replica.py: initdb, then pg_basebackup -R), PgBouncer
is the distribution's with the test harness's settings, one per topology (tests/harness/pgbouncer.py), so each
topology's server connections are its own. Every instance runs throughout; wrk loads one topology at a time in
interleaved rounds (direct, pgbouncer, …, direct, …), so drift of a shared machine hits all alike. Two instances:
wrk's two threads load one each (request.lua, BENCH_SPLIT), so one latency histogram covers both. Server
connections: the benchmark database's backends in pg_stat_activity by application_name (one per instance, which
PgBouncer sets on the server connection it lends), sampled every 100 ms on the primary and on the replica; a
row gives the highest count of its topology seen during its runs. See docs/performance.md, "Topologies (issue 15)".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import endpoints
import httpx
import seeding
from load import Sample, run_wrk, write_lines
from servers import Server, cluster_cpu_seconds, cpu_seconds, start_threadstore

from threadstore.auth import issue_token

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # the private primary + replica and PgBouncer come from the test harness
    sys.path.insert(0, str(ROOT))
from tests.harness import pgbouncer, replica  # noqa: E402

APP_NAME = "threadstore-bench"
MIN_RPS_RATIO = 0.75  # one instance through PgBouncer against one straight to PostgreSQL
MAX_P99_RATIO = 1.5
DEFAULT_ENDPOINTS = (
    "get_thread",
    "list_threads",
    "messages_first",
    "create_thread",
    "append_message",
    "patch_metadata",
)
# Reads a replica may serve (threadstore's "reads that may lag"); the rest are writes.
READS = {"get_thread", "list_threads", "list_threads_deep", "messages_first", "messages_last", "messages_newest"}


@dataclass(frozen=True)
class Topology:
    key: str
    label: str
    instances: int
    pooled: bool  # through PgBouncer (in transaction mode)
    transaction_mode: bool  # THREADSTORE_DATABASE_POOL_MODE=transaction: no statement cache, unnamed statements
    replica_reads: bool  # THREADSTORE_READ_DATABASE_URL = the replica


TOPOLOGIES = [
    Topology("direct", "1 instance → PostgreSQL", 1, pooled=False, transaction_mode=False, replica_reads=False),
    # Not in "all": splits the cost of going through PgBouncer into the app's side (statements parsed anew each
    # time, a round trip more each) and PgBouncer's (one more hop).
    Topology("direct-nocache", "1 instance → PostgreSQL, pool mode transaction (no statement cache)", 1,
             pooled=False, transaction_mode=True, replica_reads=False),
    Topology("pgbouncer", "1 instance → PgBouncer", 1, pooled=True, transaction_mode=True, replica_reads=False),
    Topology("pgbouncer2", "2 instances → PgBouncer", 2, pooled=True, transaction_mode=True, replica_reads=False),
    Topology("replica2", "2 instances → PgBouncer, reads → replica", 2, pooled=True, transaction_mode=True,
             replica_reads=True),
]  # fmt: skip
BY_KEY = {t.key: t for t in TOPOLOGIES}
ALL = ("direct", "pgbouncer", "pgbouncer2", "replica2")  # the topologies of issue 15


def parse_topologies(text: str) -> list[Topology]:
    """A comma-separated list of keys, 'all' standing for ALL; in TOPOLOGIES' order (direct first: the others'
    yardstick)."""
    keys = {k.strip() for k in text.split(",") if k.strip()}
    if "all" in keys:
        keys = (keys - {"all"}) | set(ALL)
    unknown = sorted(keys - BY_KEY.keys())
    if unknown or not keys:
        raise ValueError(f"unknown topologies {unknown}: use 'all' ({', '.join(ALL)}) or some of {', '.join(BY_KEY)}")
    return [t for t in TOPOLOGIES if t.key in keys]


def app_name(topology: Topology, index: int) -> str:
    return f"{APP_NAME}-{topology.key}-{index + 1}"


@dataclass
class Deployed:
    topology: Topology
    servers: list[Server]
    bouncer: Any  # tests.harness.pgbouncer.PgBouncer, or None

    @property
    def url(self) -> str:
        return self.servers[0].url

    @property
    def split(self) -> list[str]:
        """What request.lua spreads wrk's threads over (nothing for one instance)."""
        return [f"127.0.0.1:{s.port}" for s in self.servers] if len(self.servers) > 1 else []

    @property
    def app_names(self) -> set[str]:
        return {app_name(self.topology, i) for i in range(len(self.servers))}

    def cpu(self) -> tuple[float, float]:
        """CPU seconds used so far by the instances together, and by PgBouncer."""
        bouncer = cpu_seconds(int(self.bouncer.pid)) if self.bouncer is not None else 0.0
        return sum(s.cpu_seconds() for s in self.servers), bouncer


class ConnectionSampler:
    """Counts the benchmark database's client backends by application_name every `interval` seconds on each
    server, in a thread of its own; `peaks` gives the highest count of a set of names over a stretch of time."""

    QUERY = (
        "SELECT application_name, count(*) AS n FROM pg_stat_activity WHERE datname = $1"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY 1"
    )

    def __init__(self, dsns: Mapping[str, str], database: str, interval: float = 0.1) -> None:
        self.servers = list(dsns)
        self._dsns = dict(dsns)
        self._database = database
        self._interval = interval
        self._ticks: list[tuple[float, dict[str, dict[str, int]]]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="connection-sampler", daemon=True)
        self._error: BaseException | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def peaks(self, since: float, until: float, names: set[str]) -> dict[str, int]:
        """Per server, the highest number of backends carrying one of `names` in one sample."""
        return {
            server: max(self._sums(since, until, server, lambda n: n in names), default=0) for server in self.servers
        }

    def unattributed(self, known: set[str]) -> dict[str, tuple[int, set[str]]]:
        """Per server, the most backends at once whose application_name is no instance's (expected: 0), and
        those names."""
        with self._lock:
            names = {server: {n for _, tick in self._ticks for n in tick.get(server, {})} - known
                     for server in self.servers}  # fmt: skip
        return {server: (max(self._sums(0, float("inf"), server, lambda n: n not in known), default=0),
                         names[server]) for server in self.servers}  # fmt: skip

    def _sums(self, since: float, until: float, server: str, counted: Callable[[str], bool]) -> list[int]:
        if self._error is not None:
            raise RuntimeError(f"the connection sampler failed: {self._error!r}")
        with self._lock:
            ticks = [tick for at, tick in self._ticks if since <= at <= until]
        return [sum(n for name, n in tick.get(server, {}).items() if counted(name)) for tick in ticks]

    def _main(self) -> None:
        try:
            asyncio.run(self._sample())
        except BaseException as error:  # reported by the next peaks()
            self._error = error

    async def _sample(self) -> None:
        conns: dict[str, asyncpg.Connection] = {}
        try:
            for server, dsn in self._dsns.items():
                conns[server] = await asyncpg.connect(dsn, server_settings={"application_name": f"{APP_NAME}-sampler"})
            while not self._stop.is_set():
                now = time.monotonic()
                tick = {}
                for server, conn in conns.items():
                    rows = await conn.fetch(self.QUERY, self._database)
                    tick[server] = {str(r["application_name"]): int(r["n"]) for r in rows}
                with self._lock:
                    self._ticks.append((now, tick))
                await asyncio.sleep(self._interval)
        finally:
            for conn in conns.values():
                await conn.close()


_READS = re.compile(r"^threadstore_reads_total\{([^}]*)\} (\S+)$", re.MULTILINE)
_SERVED_BY = re.compile(r'served_by="([^"]*)"')


def reads_served(urls: Iterable[str]) -> dict[str, float] | None:
    """threadstore_reads_total summed by served_by over the instances; None when they export no such metric."""
    totals: dict[str, float] = {}
    found = False
    for url in urls:
        for labels, value in _READS.findall(httpx.get(url + "/metrics", timeout=10).text):
            found = True
            who = _SERVED_BY.search(labels)
            key = who.group(1) if who else "?"
            totals[key] = totals.get(key, 0.0) + float(value)
    return totals if found else None


@dataclass(frozen=True)
class Run:
    """One wrk run on one topology."""

    sample: Sample  # server_cpu_seconds: the instances' together
    primary_peak: int  # most server connections of the topology at once on the primary
    replica_peak: int
    bouncer_cpu_seconds: float
    primary_cpu_seconds: float  # the whole PostgreSQL cluster's
    replica_cpu_seconds: float
    reads: dict[str, float] | None  # reads during the run by served_by (None: the app has no such metric)

    def ms_per_request(self, seconds: float) -> float:
        return seconds * 1000 / self.sample.requests if self.sample.requests else 0.0


def estimate_seconds(args: argparse.Namespace, n_topologies: int, n_endpoints: int) -> float:
    per_run = args.duration + 1.5  # wrk's start and the last responses
    setup = 30 + args.users * args.threads_per_user * args.messages / 50_000 + 3 * n_topologies
    return float(setup + n_endpoints * n_topologies * (args.warmup + 1 + args.rounds * per_run))


def run(args: argparse.Namespace, keys: list[str], *, venv_bin: Path, out: Path, machine: str,
        log: Callable[[str], None]) -> int:  # fmt: skip
    """The whole topology phase; the exit status of bench/run (0 when every target holds)."""
    topologies = parse_topologies(args.topology)
    if "list_threads_deep" in keys and args.deep_users < 1:
        log("list_threads_deep needs --deep-users ≥ 1")
        return 2
    if any(t.instances > 1 for t in topologies) and args.wrk_threads % 2:
        log("two instances need an even --wrk-threads: each wrk thread loads one instance")
        return 2
    if any(t.pooled for t in topologies) and pgbouncer.find_binary() is None:
        log("PgBouncer is not installed (bench/run installs it with --topology: apt-get install pgbouncer)")
        return 2
    log(
        f"estimated run time: {estimate_seconds(args, len(topologies), len(keys)) / 60:.0f} min; working files in {out}"
    )
    started = time.monotonic()
    pair = replica.start_pair()
    if pair is None:
        log("no PostgreSQL binaries (initdb, pg_ctl, pg_basebackup) for a primary and its replica")
        return 2
    deployed: list[Deployed] = []
    sampler: ConnectionSampler | None = None
    try:
        name = args.database_name
        dsns = seeding.Dsns.on_server(str(pair.primary.dsn()), name)
        primary_url = dsns.threadstore
        replica_dsn, replica_url = str(pair.replica.dsn(name)), str(pair.replica.database_url(name))
        asyncio.run(seeding.recreate_database(dsns))
        pooled = {"THREADSTORE_DATABASE_POOL_MODE": "transaction", "THREADSTORE_DIRECT_DATABASE_URL": primary_url}
        # Once, on the primary, as behind PgBouncer: that also makes the bounds the role's defaults.
        seeding.migrate_threadstore(venv_bin / "threadstore", primary_url, out, settings=pooled)
        shape = seeding.Shape(args.users, args.threads_per_user, args.messages, args.big, args.deep_users)
        t0 = time.monotonic()
        asyncio.run(seeding.seed_threadstore_and_deep_users(dsns.bench, shape, yardstick=False))
        counts = asyncio.run(seeding.counts(dsns.bench, yardstick=False))
        asyncio.run(pair.caught_up())
        version = asyncio.run(_fetchval(dsns.admin, "SHOW server_version"))
        header = [
            f"machine: {machine}",
            f"PostgreSQL {version}: a private primary on port {pair.primary.admin_url.port} (initdb defaults) and its"
            f" streaming replica (pg_basebackup -R, hot standby) on port {pair.replica.admin_url.port}",
            f"seeded {name} in {time.monotonic() - t0:.0f} s: {counts.ts_threads:,} threads / {counts.ts_messages:,}"
            f" messages ({args.users} users x {args.threads_per_user} threads x {args.messages} messages, one thread"
            f" of {args.big:,}, {args.deep_users} users with {seeding.DEEP_THREADS} threads); replica caught up",
        ]
        for line in header:
            log(line)

        secret = secrets.token_urlsafe(48)
        for topology in topologies:
            url, settings, bouncer = primary_url, dict(pooled) if topology.transaction_mode else {}, None
            if topology.pooled:
                bouncer = pgbouncer.start(pair.primary)
                url = bouncer.database_url(name)
            if topology.replica_reads:
                settings["THREADSTORE_READ_DATABASE_URL"] = replica_url
            servers = [
                start_threadstore(
                    venv_bin,
                    str(url),
                    secret,
                    app_name(topology, i),
                    out,
                    name=f"threadstore-{topology.key}-{i + 1}",
                    settings=settings,
                )
                for i in range(topology.instances)
            ]
            deployed.append(Deployed(topology, servers, bouncer))
        for d in deployed:
            for server in d.servers:
                server.wait_ready("/readyz")
            via = f"{d.bouncer.version} (pid {d.bouncer.pid}) on {d.bouncer.port}" if d.bouncer else "direct"
            via += ", pool mode transaction" if d.topology.transaction_mode else ""
            reads = ", reads → replica" if d.topology.replica_reads else ""
            ports = ", ".join(f"{s.port} (pid {s.pid})" for s in d.servers)
            line = f"{d.topology.key}: {len(d.servers)} x threadstore serve --workers 1 on {ports}; {via}{reads}"
            header.append(line)
            log(line)

        users = [f"user_{i}" for i in range(1, args.users + 1)]
        deep_users = [f"deep_{i}" for i in range(1, args.deep_users + 1)]
        tokens = {u: issue_token(secret, u, None) for u in users + deep_users}
        data = endpoints.AppData(
            threads=asyncio.run(seeding.threadstore_thread_ids(dsns.bench)),
            big_thread=seeding.BIG_THREAD_TS,
            deep_cursors=(asyncio.run(endpoints.deep_cursors(deployed[0].url, tokens, deep_users))
                          if "list_threads_deep" in keys else {}),
            last_page_cursor=(asyncio.run(endpoints.last_page_cursor(deployed[0].url, tokens[seeding.BIG_OWNER],
                                                                     seeding.BIG_THREAD_TS, args.big))
                              if "messages_last" in keys else ""),
        )  # fmt: skip
        files = {k: write_lines(out / f"topology-{k}.lines", endpoints.lines_for(k, data, tokens)) for k in keys}

        sampler = ConnectionSampler({"primary": dsns.bench, "replica": replica_dsn}, name)
        sampler.start()
        clusters = {"primary": str(pair.primary.data_dir), "replica": str(pair.replica.data_dir)}
        results = measure(deployed, files, keys, args, sampler, clusters, log)
        known = set().union(*(d.app_names for d in deployed))
        stray = {
            server: f"{n} {sorted(names)}" if n else "0" for server, (n, names) in sampler.unattributed(known).items()
        }
        header += [
            f"instances: production defaults (pool_size 20), THREADSTORE_LOG_LEVEL=WARNING; through PgBouncer"
            f" THREADSTORE_DATABASE_POOL_MODE=transaction and THREADSTORE_DIRECT_DATABASE_URL=the primary;"
            f" PgBouncer pool_mode=transaction, default_pool_size={pgbouncer.POOL_SIZE}, one PgBouncer per topology",
            f"load: wrk {args.connections} connections, {args.wrk_threads} threads ({args.wrk_threads // 2} per"
            f" instance for two instances, with {args.connections // 2} connections), {args.duration:g} s per run,"
            f" {args.rounds} interleaved rounds after {args.warmup:g} s warm-up per topology and endpoint;"
            " medians of the rounds",
            "server connections: peak client backends of the benchmark database in pg_stat_activity, by the"
            " instances' application_name, sampled every 100 ms (the LISTEN connection of each instance"
            " included); backends of no instance during the phase: primary "
            f"{stray['primary']}, replica {stray['replica']} (the bench's own sampler excluded)",
            "CPU ms per request: CPU time from /proc around each run, of the instances, of PgBouncer and of each"
            " PostgreSQL cluster whole (postmaster, its children alive and ended), divided by the requests",
        ]  # fmt: skip
        sections, passed = report(header, results, deployed, keys, args.big)
        sections.append(f"\nTotal run time {(time.monotonic() - started) / 60:.1f} min.")
        text = "\n".join(sections) + "\n"
        (out / "topology.md").write_text(text)
        raw = {
            "header": header,
            "args": {k: str(v) for k, v in vars(args).items()},
            "runs": {k: {t: [asdict(r) for r in runs] for t, runs in per.items()} for k, per in results.items()},
        }
        (out / "topology.json").write_text(json.dumps(raw, indent=1, default=str))
        print("\n" + text, flush=True)
        return 0 if passed else 1
    finally:
        if sampler is not None:
            sampler.stop()
        for d in deployed:
            for server in d.servers:
                server.stop()
            if d.bouncer is not None:
                d.bouncer.stop()
        pair.stop()
        log("stopped the instances, PgBouncers, primary and replica")


def measure(deployed: list[Deployed], files: dict[str, Path], keys: list[str], args: argparse.Namespace,
            sampler: ConnectionSampler, clusters: dict[str, str],
            log: Callable[[str], None]) -> dict[str, dict[str, list[Run]]]:  # fmt: skip
    results: dict[str, dict[str, list[Run]]] = {}
    for key in keys:
        results[key] = {d.topology.key: [] for d in deployed}
        for d in deployed:
            run_wrk(d.url, files[key], seconds=args.warmup, connections=args.connections, threads=args.wrk_threads,
                    split=d.split)  # fmt: skip
        for n in range(args.rounds):
            for d in deployed:  # direct, pgbouncer, …, direct, …: drift of a shared machine hits all alike
                reads_before = reads_served(s.url for s in d.servers)
                cpu_before = (*d.cpu(), *(cluster_cpu_seconds(c) for c in clusters.values()))
                t0 = time.monotonic()
                sample = run_wrk(d.url, files[key], seconds=args.duration, connections=args.connections,
                                 threads=args.wrk_threads, split=d.split)  # fmt: skip
                t1 = time.monotonic()
                cpu_after = (*d.cpu(), *(cluster_cpu_seconds(c) for c in clusters.values()))
                cpu = [after - before for before, after in zip(cpu_before, cpu_after, strict=True)]
                reads_after = reads_served(s.url for s in d.servers)
                peaks = sampler.peaks(t0, t1, d.app_names)
                reads = None
                if reads_after is not None:
                    before = reads_before or {}
                    reads = {who: n - before.get(who, 0.0) for who, n in reads_after.items()}
                result = Run(
                    sample=replace(sample, server_cpu_seconds=cpu[0]),
                    primary_peak=peaks["primary"],
                    replica_peak=peaks["replica"],
                    bouncer_cpu_seconds=cpu[1],
                    primary_cpu_seconds=cpu[2],
                    replica_cpu_seconds=cpu[3],
                    reads=reads,
                )
                results[key][d.topology.key].append(result)
                s = result.sample
                bad = f" ERRORS non-2xx {s.non2xx} (last {s.last_bad_status}) socket {s.socket_errors + s.timeouts}"
                log(f"{key:15} round {n + 1} {d.topology.key:14}: {s.rps:7,.0f} req/s p50 {s.p50_ms:6.1f} ms"
                    f" p99 {s.p99_ms:6.1f} ms, server conns {result.primary_peak}/{result.replica_peak}"
                    f"{bad if s.failures else ''}")  # fmt: skip
    return results


@dataclass(frozen=True)
class Summary:
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int  # connect/read/write errors and timeouts
    primary_peak: int
    replica_peak: int
    cpu_ms: float  # per request: the instances'
    bouncer_cpu_ms: float
    primary_cpu_ms: float
    replica_cpu_ms: float
    reads: dict[str, float] | None

    @property
    def total_cpu_ms(self) -> float:
        return self.cpu_ms + self.bouncer_cpu_ms + self.primary_cpu_ms + self.replica_cpu_ms

    @property
    def errors(self) -> int:
        return self.non2xx + self.socket_errors


def summarize(runs: list[Run]) -> Summary:
    reads: dict[str, float] | None = None
    for r in runs:
        if r.reads is not None:
            reads = reads or {}
            for who, n in r.reads.items():
                reads[who] = reads.get(who, 0.0) + n
    return Summary(
        rps=statistics.median(r.sample.rps for r in runs),
        p50_ms=statistics.median(r.sample.p50_ms for r in runs),
        p99_ms=statistics.median(r.sample.p99_ms for r in runs),
        non2xx=sum(r.sample.non2xx for r in runs),
        socket_errors=sum(r.sample.socket_errors + r.sample.timeouts for r in runs),
        primary_peak=max(r.primary_peak for r in runs),
        replica_peak=max(r.replica_peak for r in runs),
        cpu_ms=statistics.median(r.sample.cpu_ms_per_request for r in runs),
        bouncer_cpu_ms=statistics.median(r.ms_per_request(r.bouncer_cpu_seconds) for r in runs),
        primary_cpu_ms=statistics.median(r.ms_per_request(r.primary_cpu_seconds) for r in runs),
        replica_cpu_ms=statistics.median(r.ms_per_request(r.replica_cpu_seconds) for r in runs),
        reads=reads,
    )


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def _label(key: str, big: int) -> str:
    return endpoints.BY_KEY[key].label.replace("100k", f"{big:,}-message")


def _reads(reads: dict[str, float] | None) -> str:
    if reads is None:
        return "-"
    return f"{reads.get('replica', 0):,.0f} / {reads.get('primary', 0):,.0f}"


def report(header: list[str], results: dict[str, dict[str, list[Run]]], deployed: list[Deployed], keys: list[str],
           big: int) -> tuple[list[str], bool]:  # fmt: skip
    """The markdown of the phase, and whether every target holds."""
    topologies = [d.topology for d in deployed]
    summaries = {k: {t.key: summarize(results[k][t.key]) for t in topologies} for k in keys}
    rows = [
        "| endpoint | topology | req/s | x direct | p50 ms | p99 ms | p99 x direct | non-2xx | socket errors"
        " | server conns primary | server conns replica | reads replica / primary | CPU ms/req: instances"
        " | PgBouncer | PostgreSQL primary | replica | all |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for k in keys:
        direct = summaries[k].get("direct")
        for t in topologies:
            s = summaries[k][t.key]
            vs = f"{_ratio(s.rps, direct.rps):.2f}" if direct else "-"
            p99_vs = f"{_ratio(s.p99_ms, direct.p99_ms):.2f}" if direct else "-"
            bouncer = f"{s.bouncer_cpu_ms:.2f}" if t.pooled else "-"
            rows.append(
                f"| {_label(k, big)} | {t.label} | {s.rps:,.0f} | {vs} | {s.p50_ms:.1f} | {s.p99_ms:.1f} | {p99_vs}"
                f" | {s.non2xx} | {s.socket_errors} | {s.primary_peak} | {s.replica_peak} | {_reads(s.reads)}"
                f" | {s.cpu_ms:.2f} | {bouncer} | {s.primary_cpu_ms:.2f} | {s.replica_cpu_ms:.2f}"
                f" | {s.total_cpu_ms:.2f} |"
            )
    errors = sum(s.errors for per in summaries.values() for s in per.values())
    passed = errors == 0
    checks = [
        "| check | result | target | verdict |",
        "|---|---|---|---|",
        f"| errors (non-2xx, socket errors, timeouts) in all topologies | {errors} | 0 | {_mark(errors == 0)} |",
    ]
    if {"direct", "pgbouncer"} <= {t.key for t in topologies}:
        for k in keys:
            direct, pooled = summaries[k]["direct"], summaries[k]["pgbouncer"]
            rps, p99 = _ratio(pooled.rps, direct.rps), _ratio(pooled.p99_ms, direct.p99_ms)
            ok = rps >= MIN_RPS_RATIO and p99 <= MAX_P99_RATIO
            passed &= ok
            checks.append(
                f"| {_label(k, big)}: 1 instance through PgBouncer / direct | req/s **{rps:.2f}**, p99 **{p99:.2f}**"
                f" | req/s ≥ {MIN_RPS_RATIO}, p99 ≤ {MAX_P99_RATIO} | {_mark(ok)} |"
            )
    if "replica2" in {t.key for t in topologies} and any(k in READS for k in keys):
        reads = [summaries[k]["replica2"] for k in keys if k in READS]
        known = [s.reads for s in reads if s.reads is not None]
        replica_reads = sum(r.get("replica", 0) for r in known)
        primary_reads = sum(r.get("primary", 0) for r in known)
        replica_conns = max(s.replica_peak for s in reads)
        ok = replica_reads > primary_reads and replica_conns > 0
        passed &= ok
        if known:
            seen = f"{replica_reads:,.0f} by the replica, {primary_reads:,.0f} by the primary"
        else:
            seen = "no threadstore_reads_total in /metrics: this build ignores THREADSTORE_READ_DATABASE_URL"
        checks.append(
            f"| replica2, read endpoints: reads served (threadstore_reads_total) | {seen}; up to {replica_conns}"
            f" server connections on the replica | most by the replica | {_mark(ok)} |"
        )
    sections = [
        "## Setup", "", *(f"- {line}" for line in header),
        "", "## Topologies", "", "\n".join(rows),
        "", "## Targets", "", "\n".join(checks),
        "", "## Every round", "", rounds_table(results, topologies, keys, big),
        "", f"Overall: {'every target holds' if passed else 'some targets MISS (see above)'}.",
    ]  # fmt: skip
    return sections, passed


def rounds_table(results: dict[str, dict[str, list[Run]]], topologies: list[Topology], keys: list[str],
                 big: int) -> str:  # fmt: skip
    rows = ["| endpoint | topology | req/s per round | p99 ms per round |", "|---|---|---|---|"]
    for k in keys:
        for t in topologies:
            runs = results[k][t.key]
            rps = ", ".join(f"{r.sample.rps:,.0f}" for r in runs)
            p99 = ", ".join(f"{r.sample.p99_ms:.1f}" for r in runs)
            rows.append(f"| {_label(k, big)} | {t.key} | {rps} | {p99} |")
    return "\n".join(rows)


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


async def _fetchval(dsn: str, sql: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval(sql))
    finally:
        await conn.close()
