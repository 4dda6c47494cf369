"""The tables: medians over the rounds, ratios against the yardstick, and the targets of issue 6."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from endpoints import BY_KEY, ENDPOINTS
from load import Sample

MIN_RPS_RATIO = 0.7
MAX_P99_RATIO = 2.0
MAX_DEEP_RATIO = 1.3


@dataclass(frozen=True)
class Summary:
    rps: float
    p50_ms: float
    p99_ms: float
    failures: int
    rounds: int
    cpu_ms: float


def summarize(samples: list[Sample]) -> Summary:
    return Summary(
        rps=statistics.median(s.rps for s in samples),
        p50_ms=statistics.median(s.p50_ms for s in samples),
        p99_ms=statistics.median(s.p99_ms for s in samples),
        failures=sum(s.failures for s in samples),
        rounds=len(samples),
        cpu_ms=statistics.median(s.cpu_ms_per_request for s in samples),
    )


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISS"


def comparison_table(results: dict[str, dict[str, list[Sample]]]) -> tuple[str, bool]:
    """One row per endpoint: threadstore (ts) against the yardstick (ys)."""
    rows = [
        "| endpoint | ts req/s | ys req/s | ts/ys req/s | ts p50 ms | ys p50 ms | ts p99 ms | ys p99 ms"
        " | ts/ys p99 | non-2xx ts/ys | ts CPU ms/req | ys CPU ms/req | ys/ts CPU | target |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    all_ok = True
    for endpoint in ENDPOINTS:
        if endpoint.key not in results:
            continue
        ts, ys = summarize(results[endpoint.key]["ts"]), summarize(results[endpoint.key]["ys"])
        rps_ratio, p99_ratio = _ratio(ts.rps, ys.rps), _ratio(ts.p99_ms, ys.p99_ms)
        ok = rps_ratio >= MIN_RPS_RATIO and p99_ratio <= MAX_P99_RATIO and ts.failures == 0 and ys.failures == 0
        all_ok &= ok
        rows.append(
            f"| {endpoint.label} | {ts.rps:,.0f} | {ys.rps:,.0f} | **{rps_ratio:.2f}** | {ts.p50_ms:.1f} | "
            f"{ys.p50_ms:.1f} | {ts.p99_ms:.1f} | {ys.p99_ms:.1f} | **{p99_ratio:.2f}** | "
            f"{ts.failures}/{ys.failures} | {ts.cpu_ms:.2f} | {ys.cpu_ms:.2f} | {_ratio(ys.cpu_ms, ts.cpu_ms):.2f} | "
            f"{_mark(ok)} |"
        )
    return "\n".join(rows), all_ok


DEEP_PAIRS = [
    ("list_threads_deep", "list_threads", True),
    ("messages_last", "messages_first", True),
    ("messages_newest", "messages_first", False),  # not a target: the other way to reach the newest messages
]


def deep_table(results: dict[str, dict[str, list[Sample]]]) -> tuple[str, bool]:
    """Deep page against page 1 of the same list, as cost ratios (>1 means the deep page is dearer)."""
    rows = [
        "| deep page vs page 1 | ts req/s cost | ts p50 cost | ts CPU cost | ys req/s cost | ys p50 cost | ys CPU cost"
        " | target |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    all_ok = True
    for deep, first, is_target in DEEP_PAIRS:
        if deep not in results or first not in results:
            continue
        cells = []
        ts_costs = []
        for app in ("ts", "ys"):
            d, f = summarize(results[deep][app]), summarize(results[first][app])
            costs = (_ratio(f.rps, d.rps), _ratio(d.p50_ms, f.p50_ms), _ratio(d.cpu_ms, f.cpu_ms))
            cells += [f"{c:.2f}" for c in costs]
            if app == "ts":
                ts_costs = list(costs)
        ok = max(ts_costs[:2]) <= MAX_DEEP_RATIO
        if is_target:
            all_ok &= ok
        verdict = _mark(ok) if is_target else f"({_mark(ok)}, informative)"
        rows.append(f"| {BY_KEY[deep].label} vs {BY_KEY[first].label} | {' | '.join(cells)} | {verdict} |")
    return "\n".join(rows), all_ok


def rounds_table(results: dict[str, dict[str, list[Sample]]]) -> str:
    """Every round's req/s, so the spread behind each median is visible."""
    rows = [
        "| endpoint | app | req/s per round | p99 ms per round | server CPU ms/req per round |",
        "|---|---|---|---|---|",
    ]
    for endpoint in ENDPOINTS:
        for app in ("ts", "ys"):
            samples = results.get(endpoint.key, {}).get(app, [])
            if samples:
                rps = ", ".join(f"{s.rps:,.0f}" for s in samples)
                p99 = ", ".join(f"{s.p99_ms:.1f}" for s in samples)
                cpu = ", ".join(f"{s.cpu_ms_per_request:.2f}" for s in samples)
                rows.append(f"| {endpoint.label} | {app} | {rps} | {p99} | {cpu} |")
    return "\n".join(rows)


def endpoint_legend() -> str:
    lines = ["| endpoint | request (both apps) | yardstick's comparable |", "|---|---|---|"]
    lines += [f"| {e.label} | `{e.request}` | {e.yardstick_note} |" for e in ENDPOINTS]
    return "\n".join(lines)
