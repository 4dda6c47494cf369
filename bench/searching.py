"""The search figures of issue 18 (API.md "Search") for bench/run; `bench/run --only search` runs them alone.

1. A database of its own (and a SQLite file) seeded with the corpus of search_corpus.py: 1,000,000 messages, one
   heavy user with 100,000 of them (search_seed.py), plus branching's 100,000-message fork target.
2. The answers checked: the first page of every query on both databases against what the corpus says matches
   (sort=recent: the very threads in order), every page of the rare word.
3. Each query type for the heavy user through HTTP, sequential on idle servers, in interleaved rounds.
4. The same rare word by `LIKE '%word%'` straight on each database.
5. Appends under wrk against threadstore at the commit before search, on a copy of the database at
   revision 0007 (interleaved rounds), with the WAL each append writes; the queries again after that load.
6. The fork rows of issue 16 on this database: forks now copy the search terms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import shutil
import sqlite3
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import branching
import httpx
import rawhttp
import search_corpus as corpus
import search_seed
import seeding
from amplification import Probe
from load import Line, run_wrk, write_lines
from search_corpus import QUERIES, QueryCase
from servers import Server, start_threadstore
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect

from threadstore.auth import issue_token
from threadstore.db.search_terms import sqlite_rank

ROOT = Path(__file__).resolve().parent.parent
MIGRATION = "src/threadstore/db/migrations/versions/20261205_0008_search.py"
APP_NAME = "threadstore-bench-search"
ENGINES = ("postgresql", "sqlite")
LABELS = {"postgresql": "PostgreSQL", "sqlite": "SQLite"}
# Targets of issue 18: p95 per query type; the common word apart. SQLite: twice PostgreSQL's, the common word
# (either sort) within 1 s.
P95_MS = {"postgresql": 50.0, "sqlite": 100.0}
COMMON_P95_MS = {
    ("postgresql", "relevance"): 250.0,
    ("postgresql", "recent"): 100.0,
    ("sqlite", "relevance"): 1000.0,
    ("sqlite", "recent"): 1000.0,
}
MIN_LIKE_RATIO = 20.0
MIN_APPEND_RATIO = 0.8
WARMUP_ROUNDS = 3
PAGE = 20  # the API's default limit
WAL_APPENDS = 200
WAL_THREADS = 20
APPEND_LINES = 5000
LIKE_SQL = (
    "SELECT DISTINCT m.thread_id FROM messages m JOIN threads t ON t.id = m.thread_id"
    " WHERE t.user_id = {user} AND m.content {like} {pattern}"
)


def target_ms(engine: str, case: QueryCase) -> float:
    if case.q == corpus.COMMON:
        return COMMON_P95_MS[(engine, case.sort)]
    return P95_MS[engine]


def estimate_seconds(args: argparse.Namespace) -> float:
    scale = args.search_scale
    seed = 30 + 240 * scale  # 4 to 4.5 min at 1,000,000 messages on 2 shared cores
    rounds = WARMUP_ROUNDS + args.search_repeats
    queries = rounds * 0.7 * scale + 5  # both databases, then PostgreSQL again after the appends
    like = 2 * (args.search_like_repeats + 1) * 0.2 * scale
    appends = 2 * args.warmup + 2 * args.rounds * (args.duration + 1.5) + 30  # + the copy, the servers, the WAL
    forks = 15
    return float(seed + queries + like + appends + forks)


def p95(values: list[float]) -> float:
    """Nearest rank: the value at or below which 95 % of the samples lie."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def _path(case: QueryCase, **extra: Any) -> str:
    return "/api/search?" + urlencode({"q": case.q, "sort": case.sort, **extra})


# ---------------------------------------------------------------- the answers


def _expected(stats: corpus.Stats, case: QueryCase) -> dict[str, Any]:
    key = "common" if case.key == "common_recent" else case.key
    return stats.threads.get(key, {})


async def verify(urls: dict[str, str], token: str, stats: corpus.Stats) -> list[str]:
    """Page 1 of every query on each database against the corpus's own matching (search_corpus.matches): with
    sort=recent the same threads in the same order, with relevance a subset of the right size and has_more; and
    every page of the rare word, which must be its whole set. Raises on the first difference."""
    lines = []
    headers = {"Authorization": f"Bearer {token}"}
    for engine, url in urls.items():
        async with httpx.AsyncClient(base_url=url, headers=headers, timeout=60) as client:
            for case in QUERIES:
                expected = _expected(stats, case)
                response = await client.get(_path(case, limit=PAGE))
                response.raise_for_status()
                body = response.json()
                got = [r["thread"]["id"] for r in body["data"]]
                if case.sort == "recent":
                    want = [t for t, _ in sorted(expected.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)]
                    if got != want[:PAGE]:
                        raise RuntimeError(f"{LABELS[engine]} {case.key}: page 1 is not the newest matching threads")
                elif not set(got) <= set(expected) or len(got) != min(PAGE, len(expected)):
                    raise RuntimeError(f"{LABELS[engine]} {case.key}: {len(got)} threads, some not matching")
                if body["has_more"] != (len(expected) > PAGE):
                    raise RuntimeError(f"{LABELS[engine]} {case.key}: has_more {body['has_more']}")
            rare = next(c for c in QUERIES if c.key == "rare")
            found: list[str] = []
            cursor = None
            while True:
                response = await client.get(_path(rare, limit=50, **({"cursor": cursor} if cursor else {})))
                response.raise_for_status()
                page = response.json()
                found += [r["thread"]["id"] for r in page["data"]]
                if not (cursor := page["next_cursor"]):
                    break
            if sorted(found) != sorted(_expected(stats, rare)):
                raise RuntimeError(f"{LABELS[engine]}: the rare word's pages hold {len(found)} threads")
        lines.append(
            f"{LABELS[engine]}: page 1 of each query as the corpus says (sort=recent: the same threads in the same"
            f" order), and every page of the rare word: its {len(found)} threads, each once"
        )
    return lines


# ---------------------------------------------------------------- latency


async def time_queries(urls: dict[str, str], token: str, *, repeats: int) -> dict[str, dict[str, list[float]]]:
    """Milliseconds per request, send to the last byte of the answer, one keep-alive connection per server;
    each round sends every query once to each server in turn, after WARMUP_ROUNDS unmeasured rounds."""
    conns = {engine: rawhttp.Connection(url, token) for engine, url in urls.items()}
    samples: dict[str, dict[str, list[float]]] = {e: {c.key: [] for c in QUERIES} for e in urls}
    try:
        for n in range(WARMUP_ROUNDS + repeats):
            for engine, conn in conns.items():
                for case in QUERIES:
                    t0 = time.perf_counter()
                    status, body = await conn.request("GET", _path(case))
                    elapsed = (time.perf_counter() - t0) * 1000
                    if status != 200:
                        raise RuntimeError(f"{LABELS[engine]} {case.key} answered {status}: {body[:300]!r}")
                    if n >= WARMUP_ROUNDS:
                        samples[engine][case.key].append(elapsed)
    finally:
        for conn in conns.values():
            conn.close()
    return samples


# ---------------------------------------------------------------- LIKE


@dataclass
class Like:
    ms: list[float]
    threads: int
    plan: list[str] = field(default_factory=list)
    # The search's own statement (the app's, as search/repository.py builds it for the same word and user: the
    # first page), timed the same way: the like-for-like comparison, database against database.
    search_ms: list[float] = field(default_factory=list)


def _search_sql(dialect: Any, user: str, word: str) -> tuple[str, list[Any]]:
    """The app's search statement for `word` (page 1, relevance) compiled for `dialect`, with its values."""
    from threadstore.search import repository as search_repo
    from threadstore.search.text import parse

    name = dialect.name
    params = search_repo._params(name, user, parse(word)) | {"s_user": user, "p_limit": 21}
    statement = search_repo._statement(name, "active", False, False, False, 0).params(**params)
    if name == "postgresql":  # the tsqueries are written into the text (literal_execute)
        compiled = statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        return str(compiled), [params[n] for n in compiled.positiontup or []]
    compiled = statement.compile(dialect=dialect)
    values = compiled.construct_params()
    return str(compiled), [values[n] for n in compiled.positiontup or []]


async def like_postgres(dsn: str, user: str, word: str, repeats: int) -> Like:
    """With jit off, as the app's sessions run (db/bounds.py): JIT would add its compile time to the scan."""
    sql = LIKE_SQL.format(user="$1", like="ILIKE", pattern="$2")
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET jit = off")
        rows = await conn.fetch(sql, user, f"%{word}%")  # warm-up
        ms = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            rows = await conn.fetch(sql, user, f"%{word}%")
            ms.append((time.perf_counter() - t0) * 1000)
        literal = LIKE_SQL.format(user=f"'{user}'", like="ILIKE", pattern=f"'%{word}%'")
        plan = [r[0] for r in await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {literal}")]
        search_sql, values = _search_sql(postgresql.asyncpg.dialect(), user, word)  # type: ignore[no-untyped-call]
        await conn.fetch(search_sql, *values)  # warm-up
        search_ms = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            await conn.fetch(search_sql, *values)
            search_ms.append((time.perf_counter() - t0) * 1000)
    finally:
        await conn.close()
    return Like(ms, len(rows), plan, search_ms)


def like_sqlite(path: Path, user: str, word: str, repeats: int) -> Like:
    sql = LIKE_SQL.format(user="?", like="LIKE", pattern="?")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute(sql, (user, f"%{word}%")).fetchall()  # warm-up
        ms = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            rows = db.execute(sql, (user, f"%{word}%")).fetchall()
            ms.append((time.perf_counter() - t0) * 1000)
        plan = [str(r[3]) for r in db.execute(f"EXPLAIN QUERY PLAN {sql}", (user, f"%{word}%"))]
        db.create_function("ts_search_rank", 2, sqlite_rank, deterministic=True)  # as db/engine.py does
        search_sql, values = _search_sql(sqlite_dialect.pysqlite.dialect(), user, word)
        db.execute(search_sql, values).fetchall()  # warm-up
        search_ms = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            db.execute(search_sql, values).fetchall()
            search_ms.append((time.perf_counter() - t0) * 1000)
    finally:
        db.close()
    return Like(ms, len(rows), plan, search_ms)


# ---------------------------------------------------------------- the baseline: threadstore before search


@dataclass(frozen=True)
class Baseline:
    kind: str  # "commit": the commit before search on a copy at 0007; "no-gin": this commit, GIN indexes dropped
    description: str
    source: Path | None  # the older commit's src folder


def baseline_source(choice: str, out: Path, log: Callable[[str], None]) -> Baseline:
    """`choice`: "auto" (the parent of the commit that added migration 0008), a revision, or "no-gin"."""
    if choice != "no-gin":
        try:
            rev = choice
            if choice == "auto":
                added = _git("log", "-1", "--format=%H", "--diff-filter=A", "--", MIGRATION)
                if not added:
                    raise RuntimeError(f"no commit adds {MIGRATION} in this clone's history")
                rev = f"{added}^"
            commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}")
            short = _git("log", "-1", "--format=%h", commit)
            dest = out / "search-baseline"
            shutil.rmtree(dest, ignore_errors=True)
            dest.mkdir(parents=True)
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], check=True,
                                     capture_output=True).stdout  # fmt: skip
            subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
            return Baseline("commit", f"threadstore at {short} (the commit before migration 0008 was added), on a"
                            " copy of the database downgraded to revision 0007", dest / "src")  # fmt: skip
        except (OSError, subprocess.CalledProcessError, RuntimeError) as error:
            log(f"search: no older commit to compare appends with ({error}); the GIN indexes dropped instead")
    return Baseline(
        "no-gin",
        "this commit on a copy of the database whose GIN indexes are dropped (the app still computes and writes"
        " the terms)",
        None,
    )


def _git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=True).stdout.strip()


async def copy_database(source: seeding.Dsns, copy: seeding.Dsns, baseline: Baseline) -> float:
    """`copy` as a file copy of `source` (nothing may be connected to it), then without search: at revision
    0007 as migration 0008's downgrade leaves it, or only without the GIN indexes. Seconds of the copy."""
    conn = await asyncpg.connect(source.admin)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{copy.name}" WITH (FORCE)')
        t0 = time.monotonic()
        for attempt in range(5):
            try:
                await conn.execute(f'CREATE DATABASE "{copy.name}" TEMPLATE "{source.name}" STRATEGY FILE_COPY')
                break
            except asyncpg.ObjectInUseError:  # an autovacuum worker still on the source
                if attempt == 4:
                    raise
                await asyncio.sleep(2)
        seconds = time.monotonic() - t0
    finally:
        await conn.close()
    conn = await asyncpg.connect(copy.bench)
    try:
        for name in search_seed.GIN:
            await conn.execute(f"DROP INDEX {name}")
        if baseline.kind == "commit":  # as migration 0008's downgrade leaves it
            for statement in (
                "DROP TRIGGER threads_search_au ON threads",
                "DROP TRIGGER threads_search_ai ON threads",
                "DROP FUNCTION thread_search_sync()",
                "DROP TABLE thread_search",
                "ALTER TABLE messages DROP COLUMN search_terms",
                "ALTER TABLE threads DROP COLUMN search_terms",
            ):
                await conn.execute(statement)
            await conn.execute("UPDATE alembic_version SET version_num = '0007'")
    finally:
        await conn.close()
    return seconds


# ---------------------------------------------------------------- appends


@dataclass
class AppendRound:
    app: str
    rps: float
    p50_ms: float
    p99_ms: float
    failures: int
    appends: int  # messages the database gained in the round
    cpu_ms: float  # server CPU per append
    wal_bytes: int  # this database's WAL records of the round (pg_walinspect), or the server-wide difference
    fpi_bytes: int
    inspected: bool  # pg_walinspect: this database's records only

    @property
    def wal_per_append(self) -> float:
        return self.wal_bytes / self.appends if self.appends else 0.0


@dataclass
class WalCase:
    app: str
    appends: int
    bytes: int
    fpi_bytes: int
    records: int
    inspected: bool  # pg_walinspect: this database's records only (else the server-wide WAL position)
    merge_bytes: int = 0  # gin_clean_pending_list after them: the pending list's merge, deferred work of these appends
    merge_fpi_bytes: int = 0


async def _messages(conn: asyncpg.Connection) -> int:
    return int(await conn.fetchval("SELECT sum(message_count) FROM threads"))


async def append_figures(
    servers: dict[str, Server],
    dsns: dict[str, str],
    lines_file: Path,
    texts: list[str],
    threads: list[tuple[str, str]],
    tokens: dict[str, str],
    args: argparse.Namespace,
    log: Callable[[str], None],
) -> tuple[list[WalCase], dict[str, list[AppendRound]]]:
    """Sequential appends with their WAL, each app in turn; then wrk rounds, interleaved (with, without, …)."""
    probes = {app: await Probe.open(dsn) for app, dsn in dsns.items()}
    counters = {app: await asyncpg.connect(dsn) for app, dsn in dsns.items()}
    try:
        cases = []
        user, _ = threads[0]
        mine = [t for u, t in threads if u == user][:WAL_THREADS]
        for app, server in servers.items():
            probe, conn = probes[app], rawhttp.Connection(server.url, tokens[user])
            gin = app == "search"
            try:

                async def append(n: int, conn: rawhttp.Connection = conn) -> None:
                    body = json.dumps({"role": "user", "content": texts[n % len(texts)]}).encode()
                    status, answer = await conn.request("POST", f"/api/threads/{mine[n % len(mine)]}/messages", body)
                    if status != 201:
                        raise RuntimeError(f"append answered {status}: {answer[:300]!r}")

                await probe.checkpoint()
                for n in range(20):
                    await append(n)
                if gin:
                    await probe.conn.execute("SELECT gin_clean_pending_list('ix_messages_search')")
                await asyncio.sleep(0.5)
                before = await probe.snapshot()
                for n in range(WAL_APPENDS):
                    await append(n)
                await asyncio.sleep(0.5)  # threadstore's publisher notifies after the commit
                w = await probe.window(before, await probe.snapshot(), WAL_APPENDS, 0)
                d = w.database
                case = WalCase(
                    app,
                    WAL_APPENDS,
                    d.bytes if d else w.wal_bytes,
                    d.fpi_bytes if d else 0,
                    w.compared_records,
                    d is not None,
                )
                if gin:
                    before = await probe.snapshot()
                    await probe.conn.execute("SELECT gin_clean_pending_list('ix_messages_search')")
                    m = await probe.window(before, await probe.snapshot(), WAL_APPENDS, 0)
                    case.merge_bytes = m.database.bytes if m.database else m.wal_bytes
                    case.merge_fpi_bytes = m.database.fpi_bytes if m.database else 0
                cases.append(case)
                merge = f", pending-list merge {case.merge_bytes / case.appends:,.0f} B/append" if gin else ""
                log(f"search appends: WAL {app}: {case.bytes / case.appends:,.0f} B/append"
                    f" ({(case.bytes - case.fpi_bytes) / case.appends:,.0f} without FPI){merge}")  # fmt: skip
            finally:
                conn.close()

        rounds: dict[str, list[AppendRound]] = {app: [] for app in servers}
        for server in servers.values():
            await asyncio.to_thread(run_wrk, server.url, lines_file, seconds=args.warmup,
                                    connections=args.connections, threads=args.wrk_threads)  # fmt: skip
        for n in range(args.rounds):
            for app, server in servers.items():
                before, count = await probes[app].snapshot(), await _messages(counters[app])
                cpu = server.cpu_seconds()
                sample = await asyncio.to_thread(run_wrk, server.url, lines_file, seconds=args.duration,
                                                 connections=args.connections, threads=args.wrk_threads)  # fmt: skip
                cpu = server.cpu_seconds() - cpu
                await asyncio.sleep(0.5)
                appends = await _messages(counters[app]) - count
                w = await probes[app].window(before, await probes[app].snapshot(), appends, sample.seconds)
                d = w.database
                r = AppendRound(app, sample.rps, sample.p50_ms, sample.p99_ms, sample.failures, appends,
                                cpu * 1000 / appends if appends else 0.0, d.bytes if d else w.wal_bytes,
                                d.fpi_bytes if d else 0, d is not None)  # fmt: skip
                rounds[app].append(r)
                bad = f" NON-2XX {sample.non2xx} (last {sample.last_bad_status})" if sample.failures else ""
                log(f"search appends round {n + 1} {app:8}: {r.rps:7,.0f} req/s p50 {r.p50_ms:6.1f} ms p99"
                    f" {r.p99_ms:6.1f} ms, CPU {r.cpu_ms:.2f} ms/append,"
                    f" WAL {r.wal_per_append:,.0f} B/append{bad}")  # fmt: skip
        return cases, rounds
    finally:
        for probe in probes.values():
            await probe.close()
        for c in counters.values():
            await c.close()


async def pending_lists(dsn: str) -> dict[str, tuple[int, int]]:
    """(pages, tuples) of each GIN index's pending list (pgstattuple); empty when it cannot be had."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        found = {}
        for name in search_seed.GIN:
            row = await conn.fetchrow("SELECT pending_pages, pending_tuples FROM pgstatginindex($1::regclass)", name)
            if row:
                found[name] = (int(row["pending_pages"]), int(row["pending_tuples"]))
        return found
    except asyncpg.PostgresError:
        return {}
    finally:
        await conn.close()


# ---------------------------------------------------------------- the run


@dataclass(frozen=True)
class Forks:
    ms: list[float]  # forks of the 1,000-message path
    big_ms: float  # the fork of the whole 100,000-message path
    big_messages: int


@dataclass
class Result:
    seeded: search_seed.Seeded
    checks: list[str]
    latency: dict[str, dict[str, list[float]]]
    like: dict[str, Like]
    baseline: Baseline
    copy_seconds: float
    wal: list[WalCase]
    appends: dict[str, list[AppendRound]]
    after: dict[str, list[float]]
    pending: dict[str, tuple[int, int]]  # GIN index -> (pages, tuples) of its pending list after the appends
    forks: dict[str, Forks]  # "search", "before"
    seconds: float = 0.0


def run(
    args: argparse.Namespace, *, venv_bin: Path, out: Path, log: Callable[[str], None]
) -> tuple[list[str], bool, dict[str, Any]]:
    started = time.monotonic()
    dsns = seeding.Dsns.on_server(args.database_url, args.search_database_name)
    copy = seeding.Dsns.on_server(args.database_url, args.search_database_name + "_0007")
    sqlite_path = out / "search.db"
    sqlite_url = f"sqlite+aiosqlite:///{sqlite_path}"
    shape = corpus.Shape.scaled(args.search_scale)
    secret = issue_secret()
    servers: dict[str, Server] = {}
    try:
        log(f"search: seeding {shape.total_messages:,} messages into {dsns.name} and {sqlite_path.name}")
        asyncio.run(seeding.recreate_database(dsns))
        seeding.migrate_threadstore(venv_bin / "threadstore", dsns.threadstore, out)
        for stale in out.glob("search.db*"):
            stale.unlink()
        seeding.migrate_threadstore(venv_bin / "threadstore", sqlite_url, out)
        seeded = search_seed.seed(shape, dsns.bench, sqlite_path, workers=args.search_workers, log=log)
        log(f"search: seeded in {seeded.seconds:.0f} s")

        servers["postgresql"] = start_threadstore(venv_bin, dsns.threadstore, secret, APP_NAME, out,
                                                  name="search-postgresql")  # fmt: skip
        servers["sqlite"] = start_threadstore(venv_bin, sqlite_url, secret, APP_NAME, out, name="search-sqlite")
        for server in servers.values():
            server.wait_ready("/readyz")
        token = issue_token(secret, corpus.HEAVY, None)
        urls = {engine: servers[engine].url for engine in ENGINES}
        checks = asyncio.run(verify(urls, token, seeded.stats))
        for line in checks:
            log(f"search: {line}")
        log(f"search: {len(QUERIES)} queries x {args.search_repeats} rounds on each database")
        latency = asyncio.run(time_queries(urls, token, repeats=args.search_repeats))
        for engine in ENGINES:
            cells = ", ".join(f"{k} {statistics.median(v):.1f}/{p95(v):.1f}" for k, v in latency[engine].items())
            log(f"search {LABELS[engine]} median/p95 ms: {cells}")
        like = {
            "postgresql": asyncio.run(like_postgres(dsns.bench, corpus.HEAVY, corpus.RARE, args.search_like_repeats)),
            "sqlite": like_sqlite(sqlite_path, corpus.HEAVY, corpus.RARE, args.search_like_repeats),
        }
        for engine, found in like.items():
            log(
                f"search LIKE {LABELS[engine]}: median {statistics.median(found.ms):.1f} ms, {found.threads} threads;"
                f" the search's statement {statistics.median(found.search_ms):.2f} ms"
            )
        servers.pop("sqlite").stop()

        # Appends: a copy without search, served by threadstore before search; both servers up from here.
        servers.pop("postgresql").stop()
        baseline = baseline_source(args.search_baseline, out, log)
        copy_seconds = asyncio.run(copy_database(dsns, copy, baseline))
        log(f"search appends: {copy.name} copied in {copy_seconds:.0f} s; baseline: {baseline.description}")
        servers["search"] = start_threadstore(venv_bin, dsns.threadstore, secret, APP_NAME, out,
                                              name="search-postgresql")  # fmt: skip
        servers["before"] = start_threadstore(venv_bin, copy.threadstore, secret, APP_NAME, out,
                                              name="search-baseline", source=baseline.source)  # fmt: skip
        for server in servers.values():
            server.wait_ready("/readyz")
        rng = random.Random(f"{corpus.SEED}-appends")
        texts = [corpus.message_text(rng, "user", [], rng.random() < corpus.CJK_SHARE)[0] for _ in range(1000)]
        others = [(u, t) for u, t in _threads(shape) if u != corpus.HEAVY]
        tokens = {u: issue_token(secret, u, None) for u in {u for u, _ in others}}
        lines = [
            Line("POST", f"/api/threads/{t}/messages", tokens[u],
                 json.dumps({"role": "user", "content": texts[n % len(texts)]}))
            for n, (u, t) in enumerate(rng.sample(others, min(APPEND_LINES, len(others))))
        ]  # fmt: skip
        lines_file = write_lines(out / "search-append.lines", lines)
        databases = {"search": dsns.bench, "before": copy.bench}
        wal, appends = asyncio.run(append_figures(servers, databases, lines_file, texts, others, tokens, args, log))

        pending = asyncio.run(pending_lists(dsns.bench))
        log(f"search: PostgreSQL queries again after the appends (GIN pending list: {pending})")
        after = asyncio.run(time_queries({"postgresql": servers["search"].url}, token, repeats=args.search_repeats))[
            "postgresql"
        ]

        # The fork rows on both servers, after the rest (a fork's 100,000 copies go through the GIN pending list).
        tree = search_seed.fork_tree(shape.total_threads + 1)
        assert tree.current is not None
        owner = issue_token(secret, branching.OWNER, None)
        forks = {}
        for app, server in servers.items():
            log(f"search: forks, {app}")
            forks[app] = Forks(*asyncio.run(_forks(server.url, owner, tree.path(tree.current), log)))
        result = Result(seeded, checks, latency, like, baseline, copy_seconds, wal, appends, after, pending, forks,
                        time.monotonic() - started)  # fmt: skip
        lines_out, ok = sections(result, args)
        return lines_out, ok, raw(result)
    finally:
        for server in servers.values():
            server.stop()
        if args.keep:
            log(f"search: kept {dsns.bench}, {copy.bench} and {sqlite_path}")
        else:
            for d in (dsns, copy):
                try:
                    asyncio.run(seeding.drop_database(d))
                except (OSError, asyncpg.PostgresError) as error:
                    log(f"could not drop {d.name}: {error}")
            for stale in out.glob("search.db*"):
                stale.unlink()


def issue_secret() -> str:
    import secrets

    return secrets.token_urlsafe(48)


def _threads(shape: corpus.Shape) -> list[tuple[str, str]]:
    out = []
    for ordinal in range(shape.total_threads):
        user, n, _ = corpus.user_of(ordinal, shape)
        out.append((user, corpus.thread_id(user, n)))
    return out


async def _forks(
    url: str, token: str, path: list[branching.Placed], log: Callable[[str], None]
) -> tuple[list[float], float, int]:
    async with httpx.AsyncClient(base_url=url, timeout=600, headers={"Authorization": f"Bearer {token}"}) as client:
        return await branching.forks(client, path, log)


# ---------------------------------------------------------------- the report


def _where(inspected: bool) -> str:
    return "" if inspected else " (server-wide: no pg_walinspect)"


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def sections(r: Result, args: argparse.Namespace) -> tuple[list[str], bool]:
    s = r.seeded
    shape, stats = s.shape, s.stats
    passed = True
    heavy = stats.heavy_messages
    pg_seed = ", ".join(f"{k} {v:.0f} s" for k, v in s.postgres.items())
    sizes = ", ".join(f"{k} {v / 2**20:,.0f} MiB" for k, v in s.pg_sizes.items())
    lines = [
        "## Search (issue 18)", "",
        f"Corpus: {shape.total_messages:,} messages in {shape.total_threads:,} threads — the heavy user"
        f" `{corpus.HEAVY}` with {shape.heavy_total:,} ({shape.heavy_threads:,} threads x {shape.heavy_messages}),"
        f" {shape.users:,} other users x {shape.threads} threads x {shape.messages};"
        f" {stats.chars / max(1, shape.total_messages):.0f} characters and"
        f" {stats.words / max(1, shape.total_messages):.1f} terms per message on average;"
        f" {s.fork_messages:,} more messages in branching's fork target (PostgreSQL).",
        f"Seeded in {s.seconds:.0f} s, both databases at once ({s.load_seconds:.0f} s building and loading; then"
        f" PostgreSQL {pg_seed}; SQLite {', '.join(f'{k} {v:.0f} s' for k, v in s.sqlite.items())}). PostgreSQL"
        f" sizes: {sizes}; SQLite file {s.sqlite_bytes / 2**20:,.0f} MiB ({s.sqlite_rows:,} messages).",
        "", "Answers checked before the timing:", "", *(f"- {c}" for c in r.checks), "",
        f"Each query {args.search_repeats} times per database after {WARMUP_ROUNDS} unmeasured rounds, sequential over"
        " one keep-alive connection to an otherwise idle `threadstore serve`, HTTP included (send to last byte),"
        f" default page ({PAGE} threads). Matching = the heavy user's messages / titles / threads that hold the"
        " query (counted from the stored terms).", "",
        "| query | `q` | matching messages (share) / titles / threads | PostgreSQL median / p95 ms | target p95 |"
        " verdict | SQLite median / p95 ms | target p95 | verdict |",
        "|---|---|---:|---:|---:|---|---:|---:|---|",
    ]  # fmt: skip
    for case in QUERIES:
        key = "common" if case.key == "common_recent" else case.key
        n_msg = stats.messages[key]
        cells = []
        for engine in ENGINES:
            v = r.latency[engine][case.key]
            limit = target_ms(engine, case)
            ok = p95(v) <= limit
            passed &= ok
            cells += [f"{statistics.median(v):.1f} / **{p95(v):.1f}**", f"≤ {limit:,.0f}", _verdict(ok)]
        lines.append(
            f"| {case.label} | `{case.q}`{' recent' if case.sort == 'recent' else ''} | {n_msg:,}"
            f" ({n_msg / max(1, heavy):.2%}) / {stats.titles[key]} / {len(stats.threads.get(key, {})):,} |"
            f" {' | '.join(cells)} |"
        )
    lines += [
        "", f"### Against `LIKE '%{corpus.RARE}%'`", "",
        "The same rare word by `" + LIKE_SQL.format(user="…", like="ILIKE", pattern=f"'%{corpus.RARE}%'") + "`"
        f" (SQLite: `LIKE`), straight on the database (PostgreSQL with jit off, as the app's sessions), median of"
        f" {args.search_like_repeats} after one warm-up; against the indexed search's own statement timed the"
        " same way (the app's page statement for the same word and user, page 1: database against database,"
        " judged), and against its HTTP median above (the request, the page's JSON and snippets included).", "",
        "| database | LIKE median ms | threads found | search statement median ms | LIKE ÷ statement | target"
        " | verdict | search over HTTP median ms | LIKE ÷ HTTP |",
        "|---|---:|---:|---:|---:|---|---|---:|---:|",
    ]  # fmt: skip
    for engine in ENGINES:
        lk = r.like[engine]
        search = statistics.median(r.latency[engine]["rare"])
        statement = statistics.median(lk.search_ms) if lk.search_ms else math.inf
        ratio = statistics.median(lk.ms) / statement
        ok = ratio >= MIN_LIKE_RATIO
        passed &= ok
        lines.append(
            f"| {LABELS[engine]} | {statistics.median(lk.ms):,.1f} | {lk.threads} | {statement:.2f} |"
            f" **{ratio:.1f}x** | ≥ {MIN_LIKE_RATIO:.0f}x | {_verdict(ok)} | {search:.1f} |"
            f" {statistics.median(lk.ms) / search:.1f}x |"
        )
    pg_plan = " / ".join(p.strip() for p in r.like["postgresql"].plan[:1])
    sqlite_plan = "; ".join(f"`{p}`" for p in r.like["sqlite"].plan)
    lines += ["", f"PostgreSQL's plan of the LIKE: `{pg_plan}`; SQLite's: {sqlite_plan}."]

    lines += [
        "", "### Appends with the index and without", "",
        f"Without: {r.baseline.description} (copied in {r.copy_seconds:.0f} s). Both servers up side by side, each on"
        f" its database; wrk {args.connections} connections, {args.duration:g} s per run, {args.rounds} interleaved"
        f" rounds (with, without, …) after {args.warmup:g} s warm-up each, `POST /api/threads/{{id}}/messages` on"
        f" {APPEND_LINES:,} random (thread, text) pairs of the other users (user messages of the corpus); medians."
        " WAL per append: this database's WAL records over all the rounds (pg_walinspect) ÷ the messages it gained"
        " (the rounds together, since a GIN pending-list merge lands in one round or another).", "",
        "| app | req/s | p50 ms | p99 ms | server CPU ms/append | WAL B/append | without FPI | non-2xx |"
        " req/s per round |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]  # fmt: skip
    med: dict[str, float] = {}
    for app, rounds in r.appends.items():
        med[app] = statistics.median(x.rps for x in rounds)
        total = sum(x.appends for x in rounds) or 1  # WAL over every round: a pending-list merge falls in one
        wal, fpi = sum(x.wal_bytes for x in rounds) / total, sum(x.fpi_bytes for x in rounds) / total
        name = "with search (this commit)" if app == "search" else "without (baseline)"
        lines.append(
            f"| {name} | {med[app]:,.0f} | {statistics.median(x.p50_ms for x in rounds):.1f} |"
            f" {statistics.median(x.p99_ms for x in rounds):.1f} | {statistics.median(x.cpu_ms for x in rounds):.2f} |"
            f" {wal:,.0f}{_where(rounds[0].inspected)} | {wal - fpi:,.0f} | {sum(x.failures for x in rounds)} |"
            f" {', '.join(f'{x.rps:,.0f}' for x in rounds)} |"
        )
    ratio = med["search"] / med["before"] if med.get("before") else float("inf")
    ok = ratio >= MIN_APPEND_RATIO and all(x.failures == 0 for rs in r.appends.values() for x in rs)
    passed &= ok
    lines += ["", f"With ÷ without, req/s: **{ratio:.2f}x** (target ≥ {MIN_APPEND_RATIO}: {_verdict(ok)})."]
    lines += [
        "", f"Sequential appends ({WAL_APPENDS} after 20 unmeasured and a CHECKPOINT, one keep-alive connection,"
        " corpus texts), WAL of this database (pg_walinspect); with the index, the GIN pending list is emptied before"
        " them and its merge (`gin_clean_pending_list`) measured after them, the work those appends defer:", "",
        "| app | WAL B/append | without FPI | records/append | pending-list merge B/append (without FPI) |",
        "|---|---:|---:|---:|---:|",
    ]  # fmt: skip
    for c in r.wal:
        merge = (
            f"{c.merge_bytes / c.appends:,.0f} ({(c.merge_bytes - c.merge_fpi_bytes) / c.appends:,.0f})"
            if c.app == "search"
            else ""
        )
        lines.append(
            f"| {'with search' if c.app == 'search' else 'without'} | {c.bytes / c.appends:,.0f}{_where(c.inspected)} |"
            f" {(c.bytes - c.fpi_bytes) / c.appends:,.0f} | {c.records / c.appends:.1f} | {merge} |"
        )
    pending = "; ".join(f"`{k}` {p:,} pages, {t:,} tuples" for k, (p, t) in r.pending.items()) or "not known"
    lines += [
        "", f"### PostgreSQL queries after the appends (GIN pending lists: {pending})", "",
        "| query | median / p95 ms | before the appends | target p95 | verdict |", "|---|---:|---:|---:|---|",
    ]  # fmt: skip
    for case in QUERIES:
        v, b = r.after[case.key], r.latency["postgresql"][case.key]
        limit = target_ms("postgresql", case)
        ok = p95(v) <= limit
        passed &= ok
        lines.append(
            f"| {case.label} | {statistics.median(v):.1f} / **{p95(v):.1f}** | {statistics.median(b):.1f} /"
            f" {p95(b):.1f} | ≤ {limit:,.0f} | {_verdict(ok)} |"
        )
    f, without = r.forks["search"], r.forks.get("before")
    median = statistics.median(f.ms)
    fork_ok = median <= branching.MAX_FORK_MS
    big_ok = f.big_messages == branching.SEGMENTS * branching.SEGMENT_LENGTH
    passed &= fork_ok and big_ok
    lines += [
        "", "### Forks copy the search terms (the fork rows of issue 16, on this database)", "",
        f"branching's `deep` thread (user `{branching.OWNER}`, corpus text), sequential forks on the idle server after"
        " the rest, HTTP included; the same on the server without search, for comparison.", "",
        "| fork | with search, ms | target | verdict | without search, ms |", "|---|---:|---|---|---:|",
        f"| {branching.FORK_PATH:,}-message path (10 segments), {branching.FORK_REPEATS} sequential | median"
        f" **{median:.1f}** (max {max(f.ms):.1f}) | median ≤ {branching.MAX_FORK_MS:.0f} ms | {_verdict(fork_ok)} |"
        f" {f'median {statistics.median(without.ms):.1f} (max {max(without.ms):.1f})' if without else ''} |",
        f"| the {branching.SEGMENTS * branching.SEGMENT_LENGTH:,}-message path (1,000 segments) |"
        f" **{f.big_ms:,.0f}** ({f.big_messages:,} messages) | completes | {_verdict(big_ok)} |"
        f" {f'{without.big_ms:,.0f}' if without else ''} |",
        "", f"Search phase: {r.seconds / 60:.1f} min; {'every target holds' if passed else 'some targets MISS'}.",
    ]  # fmt: skip
    return lines, passed


def raw(r: Result) -> dict[str, Any]:
    s = r.seeded
    return {
        "seed": {
            "shape": asdict(s.shape), "seconds": s.seconds, "load_seconds": s.load_seconds, "postgres": s.postgres,
            "sqlite": s.sqlite, "pg_sizes": s.pg_sizes, "sqlite_bytes": s.sqlite_bytes,
            "matching": {"messages": dict(s.stats.messages), "titles": dict(s.stats.titles),
                         "threads": {k: len(v) for k, v in s.stats.threads.items()}},
        },
        "checks": r.checks,
        "latency_ms": r.latency,
        "like": {e: asdict(x) for e, x in r.like.items()},
        "baseline": {"kind": r.baseline.kind, "description": r.baseline.description},
        "wal": [asdict(c) for c in r.wal],
        "appends": {app: [asdict(x) for x in rounds] for app, rounds in r.appends.items()},
        "after_appends_ms": r.after,
        "pending_list": r.pending,
        "forks": {app: asdict(f) for app, f in r.forks.items()},
        "seconds": r.seconds,
    }  # fmt: skip
