"""bench/run's driver: seed, start threadstore and the yardstick side by side, measure what each write costs in
WAL and on disk, load both with wrk in interleaved rounds, print the comparison; optionally profile and soak.
See docs/performance.md."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import shutil
import signal
import sys
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import amplification
import asyncpg
import branching
import endpoints
import profiling
import report
import searching
import seeding
import soak
import streamed_replies
import topology
from load import Sample, run_wrk
from servers import Server, start_threadstore, start_yardstick
from sqlalchemy.engine import make_url

from threadstore.auth import issue_token

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
APP_NAME = "threadstore-bench"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/run", description=__doc__)
    p.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="any database on the PostgreSQL server to use; the bench creates and drops its own there",
    )
    p.add_argument("--database-name", default="threadstore_bench")
    p.add_argument("--yardstick", type=Path, default=ROOT.parent / "shared" / "bench" / "yardstick")
    p.add_argument(
        "--topology",
        metavar="LIST",
        help="run only the topology comparison of issue 15, on a primary + replica of its own (~6 min): a"
        f" comma-separated list of {', '.join(topology.BY_KEY)}, or all (= {','.join(topology.ALL)}); smaller"
        " defaults below [in brackets]; --database-url, --keep, --reuse-database and the yardstick do not apply",
    )
    p.add_argument("--duration", type=float, help="seconds per measured wrk run (10) [5]")
    p.add_argument("--rounds", type=int, help="measured runs per app and endpoint, interleaved (3) [2]")
    p.add_argument("--warmup", type=float, help="seconds of unmeasured load per app before an endpoint (2) [1]")
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--wrk-threads", type=int, default=2)
    p.add_argument(
        "--endpoints",
        help=f"comma-separated subset of: {', '.join(endpoints.BY_KEY)} (all) [{','.join(topology.DEFAULT_ENDPOINTS)}]",
    )
    p.add_argument("--users", type=int, help="(1000) [500]")
    p.add_argument("--threads-per-user", type=int, help="(20) [10]")
    p.add_argument("--messages", type=int, help="messages per regular thread (10) [10]")
    p.add_argument("--big", type=int, help="messages in the one big thread (100000) [1000]")
    p.add_argument("--deep-users", type=int, help="users with 50+ pages of threads (50) [0]")
    p.add_argument("--soak", type=float, default=300, help="seconds of mixed load on threadstore after (0: none)")
    p.add_argument("--no-compare", action="store_true", help="skip the side-by-side rounds")
    p.add_argument(
        "--only",
        choices=["wal", "branches", "streaming", "search"],
        help="after seeding, run one phase alone: wal = write amplification (~3 min in all); branches = the"
        " branch figures of issue 16 (~9 min in all with the defaults); streaming = the streamed replies of"
        " issue 17 (~5 min in all); search = the search figures of issue 18 on a database of their own, without"
        " the common seeding nor the yardstick (~7 min)",
    )
    p.add_argument("--no-branches", action="store_true", help="skip the branch figures (issue 16)")
    p.add_argument("--no-streaming", action="store_true", help="skip the streamed replies (issue 17)")
    p.add_argument("--no-search", action="store_true", help="skip the search figures (issue 18)")
    p.add_argument("--search-scale", type=float, default=1.0, help="search corpus size: 1 = 1,000,000 messages")
    p.add_argument("--search-repeats", type=int, default=30, help="timed requests per search query and database")
    p.add_argument("--search-like-repeats", type=int, default=5, help="timed LIKE scans per database")
    p.add_argument("--search-workers", type=int, default=2, help="processes building the search corpus")
    p.add_argument(
        "--search-baseline",
        default="auto",
        help="what appends are compared with: auto (threadstore at the commit before migration 0008, on a copy of"
        " the database at 0007), a git revision, or no-gin (this commit, the GIN indexes dropped)",
    )
    p.add_argument("--search-database-name", help="the search figures' database (<--database-name>_search)")
    p.add_argument("--wal-deltas", type=int, default=200, help="sequential deltas per WAL-per-delta case")
    p.add_argument("--streaming-replies", type=int, default=50, help="replies of the streaming scenario")
    p.add_argument("--streaming-interval", type=float, default=0.2, help="seconds between a reply's deltas")
    p.add_argument("--streaming-seconds", type=float, default=60, help="length of the streaming scenario")
    p.add_argument("--streaming-step-seconds", type=float, default=20, help="length of each rate step after it")
    p.add_argument(
        "--streaming-rates",
        default="500,1000,1500,2000",
        help="deltas/s of the rate steps, climbed while every target holds (more replies, same interval)",
    )
    p.add_argument("--no-wal", action="store_true", help="skip the write-amplification phase")
    p.add_argument("--wal-requests", type=int, default=300, help="sequential requests per write and app")
    p.add_argument("--wal-messages", type=int, default=10_000, help="appends for bytes stored per message (0: none)")
    p.add_argument(
        "--wal-settle",
        type=float,
        default=11,
        help="seconds after each batch before reading: PostgreSQL 15 reports an idle backend's statistics within 10 s",
    )
    p.add_argument("--profile", action="store_true", help="py-spy threadstore on each endpoint (--duration s)")
    p.add_argument("--keep", action="store_true", help="keep the benchmark database (and print its URL)")
    p.add_argument(
        "--reuse-database",
        action="store_true",
        help="use the database a run with --keep left (same sizes), no seeding; implies --keep",
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = p.parse_args(argv)
    for name, (full, topologies) in DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, topologies if args.topology else full)
    if args.search_database_name is None:
        args.search_database_name = f"{args.database_name}_search"
    return args


# Defaults of the full run and of --topology (which needs no 100,000-message thread nor deep pages).
DEFAULTS: dict[str, tuple[Any, Any]] = {
    "duration": (10.0, 5.0),
    "rounds": (3, 2),
    "warmup": (2.0, 1.0),
    "endpoints": (",".join(e.key for e in endpoints.ENDPOINTS), ",".join(topology.DEFAULT_ENDPOINTS)),
    "users": (1000, 500),
    "threads_per_user": (20, 10),
    "messages": (10, 10),
    "big": (100_000, 1000),
    "deep_users": (50, 0),
}


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def machine() -> str:
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")), platform.machine(),
    )  # fmt: skip
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    mem = next(line.split()[1] for line in meminfo if line.startswith("MemTotal"))
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    return (
        f"{os.cpu_count()} cores ({model}), {int(mem) // 1024 // 1024} GiB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, load average at start {load}"
    )


def estimate_seconds(args: argparse.Namespace, n_endpoints: int) -> float:
    seed = 40 + args.big / 10_000 + args.users * args.threads_per_user * args.messages / 50_000
    # per app: a settle after the warm-up and after each of 3 batches, ~200 sequential requests/s, ~400 appends/s
    write_amplification = 0 if args.no_wal else 2 * (4 * args.wal_settle + 4 * args.wal_requests / 200 + 5)
    write_amplification += 0 if args.no_wal else 2 * args.wal_messages / 400
    # per round every one of the branch requests, after a warm-up of each; then ~20 forks and the NDJSON read
    n_branch = len(branching.MEASURED)
    branches = 0 if args.no_branches else n_branch * (args.warmup + args.rounds * args.duration + 1) + 30
    streaming = 0 if args.no_streaming else streamed_replies.estimate_seconds(args)
    search_time = 0 if args.no_search else searching.estimate_seconds(args)
    if args.only == "search":
        return search_time
    if args.only == "wal":
        return float(seed + 20 + write_amplification)
    if args.only == "branches":
        return float(seed + 20 + branches)
    if args.only == "streaming":
        return float(seed + 20 + streaming)
    compare = 0 if args.no_compare else n_endpoints * (2 * args.warmup + 2 * args.rounds * args.duration + 2)
    profile = n_endpoints * (args.duration + 4) if args.profile else 0
    soak = args.soak + 5 if args.soak else 0
    return float(seed + 20 + write_amplification + compare + branches + streaming + profile + soak + search_time)


def measure(
    servers: dict[str, Server], files: dict[str, dict[str, Path]], keys: list[str], args: argparse.Namespace
) -> dict[str, dict[str, list[Sample]]]:
    results: dict[str, dict[str, list[Sample]]] = {}
    for key in keys:
        results[key] = {"ts": [], "ys": []}
        for app in ("ts", "ys"):
            run_wrk(servers[app].url, files[app][key], seconds=args.warmup, connections=args.connections,
                    threads=args.wrk_threads)  # fmt: skip
        for n in range(args.rounds):
            for app in ("ts", "ys"):  # A, B, A, B, …: drift on a shared machine hits both alike
                cpu = servers[app].cpu_seconds()
                sample = run_wrk(servers[app].url, files[app][key], seconds=args.duration,
                                 connections=args.connections, threads=args.wrk_threads)  # fmt: skip
                sample = replace(sample, server_cpu_seconds=servers[app].cpu_seconds() - cpu)
                results[key][app].append(sample)
                bad = f" NON-2XX {sample.non2xx} (last {sample.last_bad_status})" if sample.failures else ""
                log(f"{key:18} round {n + 1} {app}: {sample.rps:8,.0f} req/s p50 {sample.p50_ms:6.1f} ms "
                    f"p99 {sample.p99_ms:6.1f} ms, server CPU {sample.cpu_ms_per_request:.2f} ms/req{bad}")  # fmt: skip
    return results


NEEDED_CONNECTIONS = 45  # both pools full (20 + 20) plus the driver's own


async def server_facts(dsn: str) -> tuple[str, int]:
    """The server's version and how many more connections it accepts now."""
    conn = await asyncpg.connect(dsn)
    try:
        version = str(await conn.fetchval("SHOW server_version"))
        free = await conn.fetchval(
            "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
            " - (SELECT count(*) FROM pg_stat_activity)"
        )
        return version, int(free)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.only in ("wal", "branches", "streaming", "search"):
        if getattr(args, f"no_{args.only}"):
            print(f"--only {args.only} and --no-{args.only} contradict each other", file=sys.stderr)
            return 2
        for phase in ("wal", "branches", "streaming", "search"):
            setattr(args, f"no_{phase}", phase != args.only)
        args.no_compare, args.profile, args.soak = True, False, 0
    keys = [k.strip() for k in args.endpoints.split(",") if k.strip()]
    unknown = [k for k in keys if k not in endpoints.BY_KEY]
    if unknown:
        print(f"unknown endpoints: {unknown}", file=sys.stderr)
        return 2
    if not shutil.which("wrk"):
        print("wrk is not installed (bench/run installs it)", file=sys.stderr)
        return 2
    if args.topology:
        try:
            topology.parse_topologies(args.topology)
        except ValueError as error:
            print(error, file=sys.stderr)
            return 2
        if args.only or args.profile:
            print("--topology runs alone: no --only nor --profile with it", file=sys.stderr)
            return 2
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        out = args.out.resolve()
        out.mkdir(parents=True, exist_ok=True)
        return topology.run(args, keys, venv_bin=VENV_BIN, out=out, machine=machine(), log=log)
    if args.only == "search":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
        return _search_alone(args)
    if not (args.yardstick / "app.py").exists():
        print(f"no yardstick at {args.yardstick} (--yardstick DIR)", file=sys.stderr)
        return 2
    # SIGTERM ends the run through the same cleanup as Ctrl-C: servers stopped, database dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    dsns = seeding.Dsns.on_server(args.database_url, args.database_name)
    ts_url = dsns.threadstore
    shape = seeding.Shape(args.users, args.threads_per_user, args.messages, args.big, args.deep_users)
    secret = secrets.token_urlsafe(48)
    servers: dict[str, Server] = {}
    started = time.monotonic()
    log(f"estimated run time: {estimate_seconds(args, len(keys)) / 60:.0f} min; working files in {out}")
    header = [f"machine: {machine()}"]
    try:
        version, free = asyncio.run(server_facts(dsns.admin))
        where = make_url(dsns.admin)
        header.append(f"PostgreSQL {version} at {where.host}:{where.port}, {free} free connections at start")
        if free < NEEDED_CONNECTIONS:
            log(f"WARNING: the two pools need up to {NEEDED_CONNECTIONS} connections; expect 500s from the yardstick")
        log(header[0])
        log(header[1])

        t0 = time.monotonic()
        if args.reuse_database:
            args.keep = True
        else:
            asyncio.run(seeding.recreate_database(dsns))
            seeding.migrate_threadstore(VENV_BIN / "threadstore", ts_url, out)
            seeding.seed_yardstick(args.yardstick, dsns.bench, shape, out)
            asyncio.run(seeding.seed_threadstore_and_deep_users(dsns.bench, shape))
        trees = asyncio.run((branching.load if args.reuse_database else branching.seed)(dsns.bench))
        counts = asyncio.run(seeding.counts(dsns.bench))
        verb = "reused" if args.reuse_database else "seeded"
        seed_line = (
            f"{verb} {args.database_name} in {time.monotonic() - t0:.0f} s: threadstore {counts.ts_threads:,} threads"
            f" / {counts.ts_messages:,} messages, yardstick {counts.ys_threads:,} / {counts.ys_messages:,}"
            f" ({args.users} users x {args.threads_per_user} threads x {args.messages} messages, one thread of"
            f" {args.big:,}, {args.deep_users} users with {seeding.DEEP_THREADS} threads; threadstore also"
            f" {2 + len(trees.switches):,} branched threads of {branching.OWNER}: {len(trees.deep.messages):,} messages"
            f" in {len(trees.deep.branches):,} branches, {len(trees.bushy.messages) - 1:,} siblings,"
            f" {len(trees.switches):,} of {len(trees.switches[0].messages)} messages with 2 leaves)"
        )
        header.append(seed_line)
        log(seed_line)

        users = [f"user_{i}" for i in range(1, args.users + 1)]
        deep_users = [f"deep_{i}" for i in range(1, args.deep_users + 1)]
        tokens = {u: issue_token(secret, u, None) for u in [*users, *deep_users, branching.OWNER]}

        servers["ts"] = start_threadstore(VENV_BIN, ts_url, secret, APP_NAME, out)
        servers["ys"] = start_yardstick(VENV_BIN, args.yardstick, dsns.bench, secret, out)
        servers["ts"].wait_ready("/readyz")
        servers["ys"].wait_ready("/openapi.json")
        for server in servers.values():
            libs = ", ".join(
                f"{lib} {'in use' if server.loaded(lib) else 'NOT in use'}" for lib in ("uvloop", "httptools")
            )
            line = f"{server.name}: pid {server.pid}, {server.url}, {libs}"
            header.append(line)
            log(line)

        loaded = not args.no_compare or args.profile or args.soak
        sections = ["## Setup", "", *(f"- {line}" for line in header)]
        if loaded:
            sections += [
                f"- load: wrk {args.connections} connections, {args.wrk_threads} threads, {args.duration:g} s per run,"
                f" {args.rounds} interleaved rounds per app (ts, ys, ts, ys, …) after {args.warmup:g} s warm-up each;"
                " medians of the rounds",
                "", report.endpoint_legend(),
            ]  # fmt: skip
        passed = True
        raw: dict[str, Any] = {"header": header, "args": {k: str(v) for k, v in vars(args).items()}}

        # First, while the database is as seeded and both servers are idle: no load's dead rows in its tables.
        if not args.no_wal:
            log(f"write amplification: {args.wal_requests} requests per write and app, then {args.wal_messages:,}"
                " appends per app")  # fmt: skip
            writes = amplification.run(
                {app: server.url for app, server in servers.items()}, secret, dsns.bench,
                requests=args.wal_requests, messages=args.wal_messages, settle=args.wal_settle, log=log,
            )  # fmt: skip
            lines, ok = amplification.sections(writes)
            passed &= ok
            sections += ["", *lines]
            raw["wal"] = asdict(writes)
            _emit(sections, out, raw)

        data: dict[str, endpoints.AppData] = {}
        files: dict[str, dict[str, Path]] = {}
        if loaded:
            ts_ids, ys_ids = asyncio.run(seeding.thread_ids(dsns.bench))
            for app, ids, big in (("ts", ts_ids, seeding.BIG_THREAD_TS), ("ys", ys_ids, seeding.BIG_THREAD_YS)):
                url = servers[app].url
                data[app] = endpoints.AppData(
                    threads=ids,
                    big_thread=big,
                    deep_cursors=asyncio.run(endpoints.deep_cursors(url, tokens, deep_users)),
                    last_page_cursor=asyncio.run(
                        endpoints.last_page_cursor(url, tokens[seeding.BIG_OWNER], big, args.big)
                    ),
                )
            log("walked the API to page 50 of each deep user and to the last page of the big thread (both apps)")
            files = {app: endpoints.write_endpoint_files(app, data[app], tokens, out) for app in ("ts", "ys")}
        if not args.no_compare:
            results = measure(servers, files, keys, args)
            comparison, ok1 = report.comparison_table(results)
            deep, ok2 = report.deep_table(results)
            passed &= ok1 and ok2
            sections += [
                "", "## threadstore (ts) against the yardstick (ys)", "", comparison,
                "", f"Targets: ts/ys req/s ≥ {report.MIN_RPS_RATIO}, ts/ys p99 ≤ {report.MAX_P99_RATIO}, no non-2xx.",
                "", "## Deep pages against page 1", "", deep,
                "", f"Cost = page-1 req/s ÷ deep req/s, and deep p50 ÷ page-1 p50; target ≤ {report.MAX_DEEP_RATIO}"
                " for threadstore (yardstick shown for reference).",
                "", "## Every round", "", report.rounds_table(results),
            ]  # fmt: skip
            raw["results"] = {k: {a: [asdict(s) for s in v] for a, v in r.items()} for k, r in results.items()}
            _emit(sections, out, raw)

        if not args.no_branches:
            sections += ["", *_branches(servers, trees, tokens, dsns.bench, args, out, raw)]
            passed &= raw["branches"]["ok"]
            _emit(sections, out, raw)

        if not args.no_streaming:
            ts_ids, ys_ids = asyncio.run(seeding.thread_ids(dsns.bench))
            lines, ok = streamed_replies.run(
                servers, secret, dsns.bench, {"ts": ts_ids, "ys": ys_ids}, tokens, args, out, raw, log
            )
            sections += ["", *lines]
            passed &= ok
            _emit(sections, out, raw)

        if args.profile:
            py_spy = profiling.ensure_py_spy(VENV_BIN)
            sections += ["", "## Profile of threadstore (py-spy, CPU samples of the server process)", ""]
            for key in keys:
                log(f"profiling {key}")
                prof = profiling.record(py_spy, servers["ts"], key, files["ts"][key], seconds=args.duration,
                                        connections=args.connections, out=out)  # fmt: skip
                sections += [profiling.summary(prof), ""]
            _emit(sections, out, raw)

        if args.soak:
            soak_file = endpoints.write_soak_file("ts", data["ts"], tokens, out)
            log(f"soak: {args.soak:g} s of mixed load on threadstore")
            result = soak.run_soak(servers["ts"], soak_file, seconds=args.soak, connections=args.connections,
                                   threads=args.wrk_threads, dsn=dsns.bench, app_name=APP_NAME)  # fmt: skip
            passed &= result.ok
            mix = ", ".join(f"{endpoints.BY_KEY[k].label} {w}%" for k, w in endpoints.SOAK_WEIGHTS.items())
            sections += ["", "## Soak (threadstore alone)", "", f"Mix: {mix}.", "", soak.soak_table(result)]
            raw["soak"] = {"samples": result.samples, "growth": result.growth, "ok": result.ok}
        if not args.no_search:  # last, alone: its own database and servers, the others stopped
            for server in servers.values():
                server.stop()
            lines, ok, raw["search"] = searching.run(args, venv_bin=VENV_BIN, out=out, log=log)
            sections += ["", *lines]
            passed &= ok
            _emit(sections, out, raw)
        sections += ["", f"Overall: {'every target holds' if passed else 'some targets MISS (see above)'}; "
                     f"total run time {(time.monotonic() - started) / 60:.1f} min."]  # fmt: skip
        _emit(sections, out, raw, final=True)
        return 0 if passed else 1
    finally:
        for server in servers.values():
            server.stop()
        if args.keep:
            log(f"kept the database: {dsns.bench}")
        else:
            try:
                asyncio.run(seeding.drop_database(dsns))
                log(f"dropped {args.database_name}")
            except (OSError, asyncpg.PostgresError) as error:
                log(f"could not drop {args.database_name}: {error}")


def _search_alone(args: argparse.Namespace) -> int:
    """`--only search`: the search figures on their own database, without the common seeding nor the yardstick."""
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    log(f"estimated run time: {estimate_seconds(args, 0) / 60:.0f} min; working files in {out}")
    dsns = seeding.Dsns.on_server(args.database_url, args.search_database_name)
    version, _ = asyncio.run(server_facts(dsns.admin))
    where = make_url(dsns.admin)
    header = [f"machine: {machine()}", f"PostgreSQL {version} at {where.host}:{where.port}"]
    for line in header:
        log(line)
    raw: dict[str, Any] = {"header": header, "args": {k: str(v) for k, v in vars(args).items()}}
    lines, ok, raw["search"] = searching.run(args, venv_bin=VENV_BIN, out=out, log=log)
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    sections = [
        "## Setup", "", *(f"- {line}" for line in header), f"- load average at the end {load}", "", *lines,
        "", f"Overall: {'every target holds' if ok else 'some targets MISS (see above)'}; "
        f"total run time {(time.monotonic() - started) / 60:.1f} min.",
    ]  # fmt: skip
    _emit(sections, out, raw, final=True)
    return 0 if ok else 1


def _branches(
    servers: dict[str, Server],
    trees: branching.Seeded,
    tokens: dict[str, str],
    dsn: str,
    args: argparse.Namespace,
    out: Path,
    raw: dict[str, Any],
) -> list[str]:
    """The branch figures of issue 16: the seeding checked, the requests loaded in interleaved rounds, then the
    sequential forks and the NDJSON read."""
    ts, owner = servers["ts"], tokens[branching.OWNER]
    log("branches: the seeding's placement against threadstore's, then the seeded trees through the API")
    checks = [asyncio.run(branching.check_builder(ts.url, owner, dsn))]
    requests = branching.requests_for(trees, seeding.BIG_THREAD_TS)
    checks += asyncio.run(branching.verify(ts.url, owner, trees, requests))
    ts_ids, ys_ids = asyncio.run(seeding.thread_ids(dsn))
    files = branching.write_files(trees, requests, ts_threads=ts_ids, ys_threads=ys_ids, tokens=tokens,
                                  big_owner=seeding.BIG_OWNER, workdir=out)  # fmt: skip
    results = branching.measure(servers, files, rounds=args.rounds, duration=args.duration, warmup=args.warmup,
                                connections=args.connections, threads=args.wrk_threads, log=log)  # fmt: skip
    single = asyncio.run(branching.singles(ts, owner, trees, log))
    table, ok = branching.table(results, single)
    raw["branches"] = {
        "ok": ok,
        "checks": checks,
        "results": {k: [asdict(s) for s in v] for k, v in results.items()},
        "fork_ms": single.fork_ms,
        "fork_big_ms": single.fork_big_ms,
        "ndjson": single.ndjson,
    }
    return [
        "## Branches (issue 16)", "",
        "Seeding checked through the API before the load:", "", *(f"- {c}" for c in checks), "",
        f"wrk {args.connections} connections, {args.duration:g} s per run, {args.rounds} rounds; each round loads"
        " every row once, in table order; medians of the rounds. Page cost = max(baseline req/s ÷ req/s, p50 ÷"
        " baseline p50). Forks: sequential on the idle server, HTTP included.", "",
        table, "", "### Branches, every round", "", branching.rounds_table(results),
    ]  # fmt: skip


def _emit(sections: list[str], out: Path, raw: dict[str, Any], *, final: bool = False) -> None:
    text = "\n".join(sections) + "\n"
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps(raw, indent=1, default=str))
    if final:
        print("\n" + text, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
