"""bench/langgraph/run's driver: one conversation grown turn by turn in threadstore (over its HTTP API) and in
LangGraph's PostgreSQL checkpointer, each on a fresh database of the same server, one after the other; prints
a markdown table of write time, WAL, storage and read time at the checkpoint turns. See docs/performance.md.

It measures; it asserts nothing about speed (only that each store gives back the messages written).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import subprocess
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import measure
import seeding
import table
import words
from driver import machine
from results import Run
from threadstore_side import ROOT, child_environment, measure_threadstore

HERE = Path(__file__).resolve().parent
DATABASES = {"threadstore": "lg_compare_ts", "LangGraph": "lg_compare_lg"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench/langgraph/run", description=__doc__)
    p.add_argument("--turns", type=int, default=1000, help="turns (a user message and a reply each)")
    p.add_argument("--checkpoints", default="10,100,500,1000", help="comma-separated turns to report")
    p.add_argument(
        "--database-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="any database on the PostgreSQL server; the run creates and drops its own two there",
    )
    p.add_argument(
        "--constant-reply",
        action="store_true",
        help="the same assistant reply every turn (default: a different reply per turn, as a real model gives)",
    )
    p.add_argument("--langgraph-python", type=Path, default=HERE / ".venv" / "bin" / "python")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "langgraph")
    args = p.parse_args(argv)
    try:
        args.checkpoints = measure.parse_checkpoints(args.checkpoints, args.turns)
    except ValueError as error:
        p.error(str(error))
    # Checked now, not after threadstore's half of the run.
    if not args.langgraph_python.exists():
        p.error(f"no {args.langgraph_python}: bench/langgraph/run creates LangGraph's virtualenv")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # SIGTERM ends the run through the same cleanup as Ctrl-C: server stopped, databases dropped.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    dsns = {system: seeding.Dsns.on_server(args.database_url, name) for system, name in DATABASES.items()}
    header = asyncio.run(setup_lines(dsns["threadstore"].admin, args))
    for line in header:
        measure.log(line)
    try:
        for d in dsns.values():
            asyncio.run(seeding.recreate_database(d))
        runs = [
            measure_threadstore(
                dsns["threadstore"].threadstore,
                dsns["threadstore"].bench,
                args.turns,
                args.checkpoints,
                args.constant_reply,
                out,
            ),
            run_langgraph(args, dsns["LangGraph"].bench),
        ]
    finally:
        for d in dsns.values():
            try:
                asyncio.run(seeding.drop_database(d))
            except (OSError, asyncpg.PostgresError) as error:
                measure.log(f"could not drop {d.name}: {error}")
    report = compose(header, runs)
    (out / "results.md").write_text(report + "\n")
    (out / "results.json").write_text(json.dumps([asdict(run) for run in runs], indent=1))
    print("\n" + report, flush=True)
    return 0


def run_langgraph(args: argparse.Namespace, dsn: str) -> Run:
    """LangGraph runs in its own virtualenv's Python; its Run comes back as JSON on stdout."""
    command = [
        str(args.langgraph_python), str(HERE / "langgraph_side.py"), "--dsn", dsn, "--turns", str(args.turns),
        "--checkpoints", ",".join(map(str, args.checkpoints)),
        *(["--constant-reply"] if args.constant_reply else []),
    ]  # fmt: skip
    done = subprocess.run(command, env=child_environment(), stdout=subprocess.PIPE, text=True, check=True)
    return Run.from_json(done.stdout)


async def setup_lines(admin_dsn: str, args: argparse.Namespace) -> list[str]:
    conn = await asyncpg.connect(admin_dsn)
    try:
        version = await conn.fetchval("SHOW server_version")
        # The WAL figures are server-wide: another client writing meanwhile would be counted as ours.
        busy = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE state <> 'idle' AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
    finally:
        await conn.close()
    reply = "one constant reply" if args.constant_reply else "a different reply each turn"
    return [
        f"date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; threadstore commit {commit()}",
        f"machine: {machine()}",
        f"PostgreSQL {version}; other client backends busy at start: {busy}",
        f"{args.turns:,} turns on one thread, each a user message and an assistant reply of "
        f"{words.MESSAGE_CHARS} characters ({reply}), sequential; systems run one after the other",
    ]


def commit() -> str:
    def git(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["git", *command], cwd=ROOT, capture_output=True, text=True)

    head = git("rev-parse", "--short", "HEAD").stdout.strip() or "unknown"
    return head + ("" if git("diff", "--quiet", "HEAD").returncode == 0 else " (with uncommitted changes)")


def compose(header: list[str], runs: list[Run]) -> str:
    info = [f"{run.system}, {key}: {value}" for run in runs for key, value in run.info.items()]
    return "\n".join(
        [
            *(f"- {line}" for line in header + info),
            "",
            table.render(runs),
            "",
            "All turns:",
            "",
            table.totals(runs),
            "",
            f"Where the bytes are at turn {runs[0].snapshots[-1].turn:,}:",
            "",
            table.breakdown(runs),
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
