"""The delta endpoint under wrk against the yardstick's append (issue 17, item 7): a delta is a smaller write
than an append, so threadstore's `POST …/deltas` must reach at least the yardstick's `POST …/messages` req/s.

Each threadstore run gets fresh replies, twice as many as wrk's connections (one thread of its own each, user
`deltawrk`), and delta.lua sends each delta at the length its reply's last answer gave: real appends. After
the run every reply is read back; the characters stored must be 40 x the acknowledged deltas, up to the
deltas still in flight when wrk stopped (at most one per connection). Then the replies are closed. The
yardstick's append and threadstore's own append (for reference) run as in the comparison, interleaved with
the deltas round by round: ts delta, ys append, ts append, ts delta, …
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import orjson
import report
from load import Sample, run_wrk
from rawhttp import Connection
from servers import Server
from streaming import TEXT

from threadstore.auth import issue_token

LUA = Path(__file__).with_name("delta.lua")
USER = "deltawrk"
MIN_RATIO = 1.0  # delta req/s ÷ the yardstick's append req/s
RUNS = ("ts delta", "ys append", "ts append")


@dataclass(frozen=True)
class Check:
    acknowledged: int
    stored_deltas: int  # characters stored ÷ 40
    in_flight_max: int  # wrk's connections

    @property
    def ok(self) -> bool:
        return self.acknowledged <= self.stored_deltas <= self.acknowledged + self.in_flight_max


async def _replies(url: str, token: str, n: int) -> list[tuple[str, str]]:
    """(message path, message id) of n new in_progress replies."""
    limit = asyncio.Semaphore(16)

    async def one(i: int) -> tuple[str, str]:
        conn = Connection(url, token)
        async with limit:
            try:
                _, data = await conn.request("POST", "/api/threads", orjson.dumps({"title": f"delta wrk {i}"}))
                thread_id = orjson.loads(data)["id"]
                body = orjson.dumps({"role": "assistant", "content": "", "status": "in_progress"})
                status, data = await conn.request("POST", f"/api/threads/{thread_id}/messages", body)
                if status != 201:
                    raise RuntimeError(f"starting a reply answered {status}: {data[:300]!r}")
                message_id = orjson.loads(data)["id"]
                return f"/api/threads/{thread_id}/messages/{message_id}", message_id
            finally:
                conn.close()

    return list(await asyncio.gather(*(one(i) for i in range(n))))


async def _read_and_close(url: str, token: str, paths: list[str]) -> int:
    """Characters stored in all the replies; each is closed after it is read."""
    limit = asyncio.Semaphore(16)

    async def one(path: str) -> int:
        conn = Connection(url, token)
        async with limit:
            try:
                status, data = await conn.request("GET", path)
                content = orjson.loads(data)["content"]
                if status != 200 or content != TEXT * (len(content) // len(TEXT)):
                    raise RuntimeError(f"{path} does not read back as whole deltas ({status})")
                await conn.request("PATCH", path, orjson.dumps({"status": "completed"}))
                return len(content)
            finally:
                conn.close()

    return sum(await asyncio.gather(*(one(p) for p in paths)))


def _delta_run(
    ts: Server, secret: str, *, seconds: float, connections: int, threads: int, out: Path
) -> tuple[Sample, Check]:
    token = issue_token(secret, USER, None)
    replies = asyncio.run(_replies(ts.url, token, 2 * connections))
    lines = out / "ts-delta.lines"
    lines.write_text(f"#threads\t{threads}\n" + "".join(f"{p}/deltas\t{token}\t{m}\n" for p, m in replies))
    cpu = ts.cpu_seconds()
    sample = run_wrk(ts.url, lines, seconds=seconds, connections=connections, threads=threads, script=LUA)
    sample = replace(sample, server_cpu_seconds=ts.cpu_seconds() - cpu)
    stored = asyncio.run(_read_and_close(ts.url, token, [p for p, _ in replies]))
    return sample, Check(sample.requests - sample.non2xx, stored // len(TEXT), connections)


def measure(
    servers: dict[str, Server],
    secret: str,
    append_files: dict[str, Path],
    *,
    rounds: int,
    duration: float,
    warmup: float,
    connections: int,
    threads: int,
    out: Path,
    log: Callable[[str], None],
) -> tuple[dict[str, list[Sample]], list[Check]]:
    """`append_files`: request.lua lines of each app's append (as in the comparison)."""
    results: dict[str, list[Sample]] = {run: [] for run in RUNS}
    checks: list[Check] = []

    def one(run: str, seconds: float) -> Sample:
        app, kind = run.split()
        if kind == "delta":
            sample, check = _delta_run(servers["ts"], secret, seconds=seconds, connections=connections,
                                       threads=threads, out=out)  # fmt: skip
            checks.append(check)
            return sample
        cpu = servers[app].cpu_seconds()
        sample = run_wrk(servers[app].url, append_files[app], seconds=seconds, connections=connections,
                         threads=threads)  # fmt: skip
        return replace(sample, server_cpu_seconds=servers[app].cpu_seconds() - cpu)

    for run in RUNS:
        one(run, warmup)
    for n in range(rounds):
        for run in RUNS:
            sample = one(run, duration)
            results[run].append(sample)
            bad = f" NON-2XX {sample.non2xx} (last {sample.last_bad_status})" if sample.failures else ""
            stored = f", stored {checks[-1].stored_deltas:,} deltas" if run == "ts delta" else ""
            log(f"{run:9} round {n + 1}: {sample.rps:8,.0f} req/s p50 {sample.p50_ms:6.1f} ms p99 {sample.p99_ms:6.1f}"
                f" ms, server CPU {sample.cpu_ms_per_request:.2f} ms/req{bad}{stored}")  # fmt: skip
    return results, checks


def table(results: dict[str, list[Sample]], checks: list[Check]) -> tuple[list[str], bool]:
    summaries = {run: report.summarize(samples) for run, samples in results.items()}
    ys = summaries["ys append"]
    rows = [
        "| request | req/s | p50 ms | p99 ms | server CPU ms/req | non-2xx | req/s ÷ ys append | p99 ÷ ys append |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run, s in summaries.items():
        rows.append(
            f"| {run} | {s.rps:,.0f} | {s.p50_ms:.1f} | {s.p99_ms:.1f} | {s.cpu_ms:.2f} | {s.failures}"
            f" | **{s.rps / ys.rps:.2f}** | {s.p99_ms / ys.p99_ms:.2f} |"
        )
    delta = summaries["ts delta"]
    ratio = delta.rps / ys.rps if ys.rps else 0.0
    stored_ok = all(c.ok for c in checks)
    ok = ratio >= MIN_RATIO and delta.failures == 0 and ys.failures == 0 and stored_ok
    stored = "; ".join(f"{c.acknowledged:,} acknowledged, {c.stored_deltas:,} stored" for c in checks)
    rows += [
        "",
        f"ts delta ÷ ys append req/s: **{ratio:.2f}x** (target ≥ {MIN_RATIO}: {'ok' if ok else 'MISS'}). Deltas"
        f" stored per delta run (warm-up first; stored may exceed acknowledged by the deltas in flight when wrk"
        f" stopped): {stored} — {'every reply reads back as its deltas' if stored_ok else 'MISMATCH'}.",
    ]
    return rows, ok
