"""Soak: minutes of mixed load on threadstore alone, watching resident memory, errors and leftovers."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from load import Sample, parse, start_wrk
from servers import Server

MAX_GROWTH = 0.10


@dataclass(frozen=True)
class SoakResult:
    seconds: float
    sample: Sample
    rss_idle_kib: int  # before any soak load
    rss_baseline_kib: int  # after the warm-up part of the soak: caches filled
    rss_end_kib: int  # last sample under load
    rss_max_kib: int
    rss_after_kib: int  # a few seconds after the load stopped
    samples: list[tuple[float, int]]
    pool_checked_out: float | None
    idle_in_transaction: int
    backends: dict[str, int]

    @property
    def growth(self) -> float:
        return (self.rss_end_kib - self.rss_baseline_kib) / self.rss_baseline_kib

    @property
    def ok(self) -> bool:
        return (
            self.growth <= MAX_GROWTH
            and self.sample.failures == 0
            and self.pool_checked_out == 0
            and self.idle_in_transaction == 0
        )


def run_soak(
    server: Server,
    lines_file: Path,
    *,
    seconds: float,
    connections: int,
    threads: int,
    dsn: str,
    app_name: str,
    interval: float = 5.0,
) -> SoakResult:
    idle = server.rss_kib()
    started = time.monotonic()
    process = start_wrk(server.url, lines_file, seconds=seconds, connections=connections, threads=threads)
    samples: list[tuple[float, int]] = []
    while process.poll() is None:
        time.sleep(min(interval, 1.0) if not samples else interval)
        if process.poll() is None:
            samples.append((time.monotonic() - started, server.rss_kib()))
            print(f"  soak t={samples[-1][0]:5.0f}s rss={samples[-1][1] / 1024:7.1f} MiB", flush=True)
    out, err = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk failed: {err or out}")
    sample = parse(out)
    time.sleep(2)  # let the last responses finish and connections return
    warm = min(60.0, seconds / 5)
    baseline = next((rss for t, rss in samples if t >= warm), samples[0][1] if samples else idle)
    return SoakResult(
        seconds=seconds,
        sample=sample,
        rss_idle_kib=idle,
        rss_baseline_kib=baseline,
        rss_end_kib=samples[-1][1] if samples else server.rss_kib(),
        rss_max_kib=max((rss for _, rss in samples), default=idle),
        rss_after_kib=server.rss_kib(),
        samples=samples,
        pool_checked_out=pool_gauge(server.url),
        idle_in_transaction=_idle_in_transaction(dsn, app_name),
        backends=_backends(dsn, app_name),
    )


_GAUGE = re.compile(r"^threadstore_db_pool_checked_out (\S+)$", re.MULTILINE)


def pool_gauge(base_url: str) -> float | None:
    match = _GAUGE.search(httpx.get(base_url + "/metrics", timeout=10).text)
    return float(match.group(1)) if match else None


def _fetch(dsn: str, query: str, *args: object) -> list[asyncpg.Record]:
    import asyncio

    async def go() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return list(await conn.fetch(query, *args))
        finally:
            await conn.close()

    return asyncio.run(go())


def _idle_in_transaction(dsn: str, app_name: str) -> int:
    rows = _fetch(
        dsn,
        "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'",
        app_name,
    )
    return int(rows[0]["n"])


def _backends(dsn: str, app_name: str) -> dict[str, int]:
    rows = _fetch(
        dsn,
        "SELECT coalesce(state, '?') AS state, count(*) AS n FROM pg_stat_activity WHERE application_name = $1"
        " GROUP BY 1",
        app_name,
    )
    return {r["state"]: int(r["n"]) for r in rows}


def soak_table(result: SoakResult) -> str:
    mib = 1024
    s = result.sample
    rows = [
        "| soak | value | target |",
        "|---|---:|---|",
        f"| duration | {result.seconds:.0f} s, {s.requests:,} requests, {s.rps:,.0f} req/s | |",
        f"| p50 / p99 / max latency | {s.p50_ms:.1f} / {s.p99_ms:.1f} / {s.max_ms:.0f} ms | |",
        f"| non-2xx / socket errors / timeouts | {s.non2xx} / {s.socket_errors} / {s.timeouts} | 0 |",
        f"| RSS idle before load | {result.rss_idle_kib / mib:.1f} MiB | |",
        f"| RSS after warm-up (baseline) | {result.rss_baseline_kib / mib:.1f} MiB | |",
        f"| RSS at end of load / max | {result.rss_end_kib / mib:.1f} / {result.rss_max_kib / mib:.1f} MiB | |",
        f"| RSS growth baseline → end | {result.growth * 100:+.1f} % | ≤ {MAX_GROWTH * 100:.0f} % |",
        f"| RSS 2 s after load | {result.rss_after_kib / mib:.1f} MiB | |",
        f"| pool checked out after load (/metrics) | {result.pool_checked_out} | 0 |",
        f"| backends idle in transaction after load | {result.idle_in_transaction} | 0 |",
        f"| backends of the app by state | {result.backends} | |",
        f"| verdict | {'ok' if result.ok else 'MISS'} | |",
    ]
    return "\n".join(rows)
