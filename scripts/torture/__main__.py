"""`python -m scripts.torture --duration 600`: race storms and kill -9 crash audits, round after round.

Targets: SQLite (a file in the work folder), PostgreSQL at READ COMMITTED and at SERIALIZABLE (a fresh
database on the local server, created and dropped by the run, or `--database-url`), and a private PostgreSQL
cluster of the run's own for the rounds that kill PostgreSQL itself (never the shared server). Prints a
summary and exits 1 on any violation. The servers are the test harness's `ServeProcess` (tests/harness/
processes.py): a server the run leaves behind, however it ends, is killed with it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
from scripts.torture.client import Client, torture_server
from scripts.torture.crash import SETTINGS, CrashResult, postgres_killer, run_crash_audit, server_killer
from scripts.torture.dbview import Inspector
from scripts.torture.family import Race, RaceResult
from scripts.torture.llm import FakeLlm
from scripts.torture.races import FAMILIES
from sqlalchemy.engine import make_url
from tests.harness.databases import Backend
from tests.harness.processes import ServeProcess

LOCAL_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
APPLICATION_NAME = "threadstore-torture"  # the torture's servers in pg_stat_activity of the shared server


def server(workdir: Path, url: str, **settings: object) -> ServeProcess:
    """A torture server on the database at `url` (SQLite or PostgreSQL), its log in `workdir`."""
    backend = Backend(make_url(url).get_backend_name(), url)
    return torture_server(workdir, backend, application_name=APPLICATION_NAME, **settings)


@dataclass
class Tally:
    operations: int = 0
    acknowledged: int = 0
    unknown: int = 0
    audited: int = 0
    kills: int = 0
    rounds: int = 0
    retries: float = 0.0
    violations: list[str] = field(default_factory=list)
    replies: Counter[str] = field(default_factory=Counter)  # streamed replies of the crash rounds

    def add_race(self, result: RaceResult) -> None:
        self.rounds += 1
        self.operations += result.operations
        self.acknowledged += result.acknowledged
        self.audited += result.acknowledged  # each acknowledged answer is checked against the final state
        self.violations += result.violations

    def add_crash(self, result: CrashResult) -> None:
        self.rounds += 1
        self.operations += result.operations
        self.acknowledged += result.acknowledged
        self.unknown += result.unknown
        self.audited += result.audited
        self.kills += result.kills
        self.violations += result.violations
        self.replies += result.replies


@dataclass
class Scenario:
    name: str
    run: Callable[[], Awaitable[None]]
    tally: Tally = field(default_factory=Tally)


@contextlib.asynccontextmanager
async def fresh_pg_database(admin_dsn: str) -> AsyncIterator[str]:
    """A new database on the server of `admin_dsn`, dropped afterwards; yields its SQLAlchemy URL."""
    name = f"threadstore_torture_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield make_url(admin_dsn).set(drivername="postgresql+asyncpg", database=name).render_as_string(False)
    finally:
        admin = await asyncpg.connect(admin_dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@contextlib.asynccontextmanager
async def private_cluster() -> AsyncIterator[Any]:
    # The one import from the test suite: its helper that starts a throwaway cluster (initdb + pg_ctl).
    from tests.pg_server import start_private_cluster

    server = start_private_cluster()
    if server is None:
        yield None
        return
    try:
        yield server
    finally:
        server.stop()


async def torture(args: argparse.Namespace) -> int:
    work = Path(args.workdir or tempfile.mkdtemp(prefix="threadstore-torture-"))
    deadline = time.monotonic() + args.duration
    scenarios: list[Scenario] = []
    servers: list[ServeProcess] = []
    inspectors: list[Inspector] = []

    async with contextlib.AsyncExitStack() as stack:

        async def race_target(name: str, url: str, isolation: str) -> None:
            llm = FakeLlm()
            await llm.start()
            stack.push_async_callback(llm.stop)
            process = server(work / name.replace(" ", "-"), url, isolation_level=isolation, **llm.settings())
            servers.append(process)
            await process.start()
            db = Inspector(url)
            inspectors.append(db)
            client = Client(process.base_url, connections=args.clients + 16)
            stack.push_async_callback(client.aclose)
            scenario = Scenario(f"races, {name}", lambda: None)  # type: ignore[arg-type,return-value]

            async def run() -> None:
                for family in FAMILIES.values():
                    await client.warm(args.clients)
                    scenario.tally.add_race(await family(Race(client, db, clients=args.clients, llm=llm)))
                scenario.tally.retries = await client.transaction_retries()

            scenario.run = run
            scenarios.append(scenario)

        def crash_target(name: str, folder: str, url: str, kill: Any) -> None:
            process = server(work / folder, url, **SETTINGS)
            servers.append(process)
            db = Inspector(url)
            inspectors.append(db)
            scenario = Scenario(f"crash audit, {name}", lambda: None)  # type: ignore[arg-type,return-value]

            async def run() -> None:
                # The last round is cut to the time left, but never below 10 s of load (a kill needs a load).
                floor = min(10.0, args.crash_seconds)
                length = min(args.crash_seconds, max(deadline - time.monotonic(), floor))
                result = await run_crash_audit(
                    scenario.name,
                    process,
                    db,
                    duration=length,
                    kill=kill(process),
                    interval=(args.kill_min, args.kill_max),
                    min_kills=1,
                )
                scenario.tally.add_crash(result)

            scenario.run = run
            scenarios.append(scenario)

        sqlite_url = f"sqlite+aiosqlite:///{work / 'sqlite' / 'threadstore.db'}"
        (work / "sqlite").mkdir(parents=True, exist_ok=True)
        where = "none"
        if args.database_url:
            pg_url = args.database_url
            where = "--database-url"
        elif args.private_postgres and not args.no_postgres:
            own = await stack.enter_async_context(private_cluster())
            if own is None:
                raise SystemExit("torture: --private-postgres needs the PostgreSQL binaries (initdb, pg_ctl)")
            pg_url = await stack.enter_async_context(fresh_pg_database(own.dsn()))
            where = "a fresh database on a private cluster"
        elif not args.no_postgres:
            pg_url = await stack.enter_async_context(fresh_pg_database(args.admin_url))
            where = f"a fresh database on {make_url(args.admin_url).render_as_string()}"
        else:
            pg_url = None

        await race_target("SQLite", sqlite_url, "SERIALIZABLE")
        if pg_url:
            await race_target("PostgreSQL READ COMMITTED", pg_url, "READ COMMITTED")
            await race_target("PostgreSQL SERIALIZABLE", pg_url, "SERIALIZABLE")
            crash_target("server SIGKILL, PostgreSQL", "crash-pg", pg_url, server_killer)
        crash_target("server SIGKILL, SQLite", "crash-sqlite", sqlite_url, server_killer)
        if not args.no_postgres and not args.no_pg_kill:
            cluster = await stack.enter_async_context(private_cluster())
            if cluster is None:
                print("torture: no PostgreSQL binaries: the PostgreSQL-kill rounds are skipped", file=sys.stderr)
            else:
                private_url = await stack.enter_async_context(fresh_pg_database(cluster.dsn()))
                crash_target(
                    "PostgreSQL stop -m immediate",
                    "crash-pg-kill",
                    private_url,
                    lambda _server: postgres_killer(lambda: cluster.pg_ctl_stop("immediate"), cluster.pg_ctl_start),
                )
        try:
            # The clock starts once every server is up: setup time is not torture time.
            started = time.monotonic()
            deadline = started + args.duration
            while time.monotonic() < deadline:
                for scenario in scenarios:
                    if time.monotonic() >= deadline and scenario.tally.rounds:
                        continue
                    began = time.monotonic()
                    await scenario.run()
                    print(
                        f"[{time.monotonic() - started:6.0f}s] {scenario.name}: round {scenario.tally.rounds} done "
                        f"in {time.monotonic() - began:.0f}s, {len(scenario.tally.violations)} violations so far",
                        flush=True,
                    )
        finally:
            for process in servers:
                await process.aclose()
            for db in inspectors:
                await db.dispose()
    return report(scenarios, time.monotonic() - (deadline - args.duration), args, where)


def report(scenarios: list[Scenario], elapsed: float, args: argparse.Namespace, where: str) -> int:
    total = Tally()
    lines = [
        f"threadstore torture: {elapsed:.0f} s, {args.clients} clients per race storm, PostgreSQL: {where}",
        f"{'scenario':<44} {'runs':>6} {'operations':>10} {'acknowledged':>12} {'unknown':>8} "
        f"{'audited':>9} {'kills':>5} {'retries':>7} {'violations':>10}",
    ]
    for scenario in scenarios:
        t = scenario.tally
        lines.append(
            f"{scenario.name:<44} {t.rounds:>6} {t.operations:>10} {t.acknowledged:>12} {t.unknown:>8} "
            f"{t.audited:>9} {t.kills:>5} {t.retries:>7.0f} {len(t.violations):>10}"
        )
        for name in ("operations", "acknowledged", "unknown", "audited", "kills", "rounds", "retries"):
            setattr(total, name, getattr(total, name) + getattr(t, name))
        total.violations += t.violations
    lines.append(
        f"{'total':<44} {total.rounds:>6} {total.operations:>10} {total.acknowledged:>12} {total.unknown:>8} "
        f"{total.audited:>9} {total.kills:>5} {total.retries:>7.0f} {len(total.violations):>10}"
    )
    crashes = [scenario for scenario in scenarios if scenario.tally.replies]
    if crashes:
        # The streamed replies of the crash rounds: every acknowledged delta is audited in its reply.
        kinds = ("started", "deltas", "closed", "swept", "unfinished", "deleted")
        lines.append(f"{'streamed replies':<44} " + " ".join(f"{k:>10}" for k in kinds))
        for scenario in crashes:
            counts = scenario.tally.replies
            name = scenario.name.replace("crash audit", "replies")
            lines.append(f"{name:<44} " + " ".join(f"{counts[k]:>10}" for k in kinds))
    print("\n".join(lines))
    for violation in total.violations[:50]:
        print(f"VIOLATION: {violation}")
    return 1 if total.violations else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.torture", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600.0, help="seconds to run (default 600)")
    parser.add_argument(
        "--database-url",
        help="PostgreSQL to use (postgresql+asyncpg://…); default: a fresh "
        "database on the local server, dropped afterwards",
    )
    parser.add_argument("--admin-url", default=LOCAL_ADMIN, help="server on which to create the fresh database")
    parser.add_argument(
        "--private-postgres",
        action="store_true",
        help="put the races' and server-kill rounds' database on a private cluster of the run's own instead of "
        "the local server (when that server's connection slots are taken by others)",
    )
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument("--no-pg-kill", action="store_true", help="skip the rounds that kill a private cluster")
    parser.add_argument("--clients", type=int, default=40, help="concurrent clients per race storm")
    parser.add_argument("--crash-seconds", type=float, default=40.0, help="load seconds per crash round")
    parser.add_argument("--kill-min", type=float, default=1.0, help="shortest pause between kills (s)")
    parser.add_argument("--kill-max", type=float, default=4.0, help="longest pause between kills (s)")
    parser.add_argument("--workdir", help="folder for SQLite files and server logs (default: a new temporary one)")
    return asyncio.run(torture(parser.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
