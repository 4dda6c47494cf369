"""The figures of issue 17 (streamed replies) for bench/run: WAL per delta (delta_wal.py), the streaming
scenario and the highest delta rate that holds its targets (streaming.py), and the delta endpoint under wrk
against the yardstick's append (delta_wrk.py). `bench/run --only streaming` runs them alone."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import delta_wal
import delta_wrk
import streaming
from endpoints import APPEND_BODY
from load import Line, write_lines
from servers import Server

from threadstore.auth import issue_token

WAL_USER = "walbench_delta"


def estimate_seconds(args: argparse.Namespace) -> float:
    wal = 25
    # the scenario, then about four steps of the ladder and the one halfway; each with ~5 s of setup and drain
    scenario = args.streaming_seconds + 4 * args.streaming_step_seconds + 6 * 8
    wrk = 3 * (args.warmup + args.rounds * args.duration) + 4 * (args.rounds + 1)
    return float(wal + scenario + wrk)


def run(
    servers: dict[str, Server],
    secret: str,
    dsn: str,
    threads: dict[str, list[tuple[str, str]]],
    tokens: dict[str, str],
    args: argparse.Namespace,
    out: Path,
    raw: dict[str, Any],
    log: Callable[[str], None],
) -> tuple[list[str], bool]:
    """`threads`: each app's seeded (user, thread) pairs, for its append under wrk."""
    ts = servers["ts"]
    log(f"streamed replies: WAL per delta ({args.wal_deltas} deltas per case)")
    cases = asyncio.run(delta_wal.measure(ts.url, issue_token(secret, WAL_USER, None), dsn, deltas=args.wal_deltas,
                                          log=log))  # fmt: skip
    wal_rows, wal_ok = delta_wal.table(cases)

    log(f"streamed replies: scenario ({args.streaming_seconds:g} s), rate steps ({args.streaming_step_seconds:g} s)")
    rates = [float(r) for r in args.streaming_rates.split(",") if r.strip()]
    search = asyncio.run(streaming.run(
        ts.url, secret, replies=args.streaming_replies, interval=args.streaming_interval,
        seconds=args.streaming_seconds, step_seconds=args.streaming_step_seconds, rates=rates,
        server_cpu=ts.cpu_seconds, log=log,
    ))  # fmt: skip
    scenario_ok = search.scenario.ok
    best = search.best

    log("streamed replies: delta under wrk against the yardstick's append")
    append_files = {
        app: write_lines(out / f"{app}-append-streaming.lines",
                         [Line("POST", f"/api/threads/{t}/messages", tokens[u], APPEND_BODY) for u, t in pairs])
        for app, pairs in threads.items()
    }  # fmt: skip
    results, checks = delta_wrk.measure(
        servers, secret, append_files, rounds=args.rounds, duration=args.duration, warmup=args.warmup,
        connections=args.connections, threads=args.wrk_threads, out=out, log=log,
    )  # fmt: skip
    wrk_rows, wrk_ok = delta_wrk.table(results, checks)

    raw["streaming"] = {
        "wal": [asdict(c) for c in cases],
        "search": streaming.summary(search),
        "wrk": {run: [asdict(s) for s in samples] for run, samples in results.items()},
        "wrk_checks": [asdict(c) for c in checks],
    }
    s = search.scenario
    streams = (
        "`GET /api/events?thread_id=…`" if s.filtered else "`GET /api/events` (one user per reply: no `?thread_id=`)"
    )
    best_line = (
        f"**{best.offered:,.0f} deltas/s** ({best.replies} replies x 1 / {best.interval * 1000:g} ms)"
        if best
        else "**none** of the rates run held the targets"
    )
    sections = [
        "## Streamed replies (issue 17)", "",
        "### WAL per delta", "",
        f"{args.wal_deltas} deltas of 40 characters per size, sequential, the two sizes alternating in one window,"
        f" each size's round-robin over {delta_wal.REPLIES} replies grown by deltas to the size (threadstore) or"
        f" {delta_wal.REPLIES} rows of a scratch table holding the same text (counterfactual). Bytes per delta:"
        " this database's WAL records inserted during the request (pg_walinspect); medians. Row updates: the"
        " reply row's (`messages`) or the scratch row's heap updates, HOT (same page, no index entry) or not.",
        "",
        *wal_rows, "",
        "### Streaming scenario", "",
        f"Each reply: an `in_progress` message of its own user's thread, a 40-character delta every"
        f" {args.streaming_interval * 1000:g} ms over its own keep-alive connection, watched by {streams}."
        " Delivery is send → the event's arrival on the watching stream (it includes the request, so it can only"
        " overstate commit → arrival); 200 → event is the other bound. Targets: no error, achieved ≥"
        f" {streaming.MIN_ACHIEVED:.0%} of offered, p99 delta ≤ {streaming.MAX_DELTA_P99_MS:g} ms, p99 delivery ≤"
        f" {streaming.MAX_DELIVERY_P99_MS:g} ms.", "",
        *streaming.table(search), "",
        f"Highest delta rate that held every target: {best_line}.", "",
        "### Delta under wrk against the yardstick's append", "",
        f"wrk {args.connections} connections, {args.duration:g} s per run, {args.rounds} interleaved rounds (ts delta,"
        f" ys append, ts append) after {args.warmup:g} s warm-up each; medians. Each delta run: fresh replies,"
        f" {2 * args.connections} of them, each delta at its reply's stored length (bench/delta.lua).", "",
        *wrk_rows,
    ]  # fmt: skip
    return sections, wal_ok and scenario_ok and wrk_ok
