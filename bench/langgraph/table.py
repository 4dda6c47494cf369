"""The markdown report: a row per system at each checkpoint, growth from the first checkpoint to the last,
and LangGraph against threadstore at the last."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from results import Run, Snapshot

WINDOW = 10  # turns ending at a checkpoint whose write time and WAL are summarized


@dataclass(frozen=True)
class Row:
    turn: int
    write_ms: float  # median of the window
    wal_per_turn: float  # mean of the window: the server-wide position's movement
    own_wal_per_turn: float | None  # mean of the window: the records of the system's database
    stored: int
    read_ms: float  # median of the checkpoint's reads

    @property
    def bytes_per_turn(self) -> float:
        return self.stored / self.turn


COLUMNS: list[tuple[str, Callable[[Row], float | None]]] = [
    ("write ms", lambda r: r.write_ms),
    ("WAL B/turn", lambda r: r.wal_per_turn),
    ("own WAL B/turn", lambda r: r.own_wal_per_turn),
    ("stored bytes", lambda r: r.stored),
    ("bytes/turn", lambda r: r.bytes_per_turn),
    ("read last 50 ms", lambda r: r.read_ms),
]


def row(run: Run, snap: Snapshot) -> Row:
    window = run.turns[max(0, snap.turn - WINDOW) : snap.turn]  # turns are numbered from 1
    own = [t.own_wal_bytes for t in window if t.own_wal_bytes is not None]
    return Row(
        turn=snap.turn,
        write_ms=statistics.median(t.write_ms for t in window),
        wal_per_turn=statistics.fmean(t.wal_bytes for t in window),
        own_wal_per_turn=statistics.fmean(own) if len(own) == len(window) else None,
        stored=snap.stored_bytes,
        read_ms=statistics.median(snap.read_ms),
    )


def render(runs: list[Run]) -> str:
    """`runs` is threadstore's first, then LangGraph's: the ratio reads LangGraph / threadstore."""
    rows = {run.system: [row(run, snap) for snap in run.snapshots] for run in runs}
    first, last = runs[0].snapshots[0].turn, runs[0].snapshots[-1].turn
    lines = [
        f"| turn | system | write ms (median of last {WINDOW}) | WAL B/turn (mean of last {WINDOW}) "
        f"| own WAL B/turn (mean of last {WINDOW}) | stored bytes | bytes/turn | read last 50 ms (median of 5) |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for i, snap in enumerate(runs[0].snapshots):
        for run in runs:
            r = rows[run.system][i]
            lines.append(
                f"| {snap.turn:,} | {run.system} | {r.write_ms:.1f} | {r.wal_per_turn:,.0f} "
                f"| {_maybe(r.own_wal_per_turn)} | {r.stored:,} | {r.bytes_per_turn:,.0f} | {r.read_ms:.2f} |"
            )
    lines += ["", f"Growth, turn {last:,} / turn {first:,}:", "", _header("system"), _rule()]
    for run in runs:
        lines.append(_ratios(run.system, rows[run.system][-1], rows[run.system][0]))
    base, other = runs[0].system, runs[-1].system
    lines += ["", f"{other} / {base} at turn {last:,}:", "", _header(""), _rule()]
    lines.append(_ratios(f"{other} / {base}", rows[other][-1], rows[base][-1]))
    return "\n".join(lines)


def totals(runs: list[Run]) -> str:
    """The whole run's sums: what a conversation of this length cost in all."""
    lines = ["| system | turns | write s | WAL bytes | own WAL bytes |", "|---|---:|---:|---:|---:|"]
    for run in runs:
        own = [t.own_wal_bytes for t in run.turns if t.own_wal_bytes is not None]
        own_total = f"{sum(own):,}" if len(own) == len(run.turns) else "n/a"
        lines.append(
            f"| {run.system} | {len(run.turns):,} | {sum(t.write_ms for t in run.turns) / 1000:,.1f} "
            f"| {sum(t.wal_bytes for t in run.turns):,} | {own_total} |"
        )
    return "\n".join(lines)


def breakdown(runs: list[Run]) -> str:
    """Each table's bytes and rows at the last checkpoint: where the stored bytes are."""
    lines = ["| system | table | bytes | rows |", "|---|---|---:|---:|"]
    for run in runs:
        snap = run.snapshots[-1]
        for table, size in snap.table_bytes.items():
            lines.append(f"| {run.system} | {table} | {size:,} | {snap.table_rows[table]:,} |")
    return "\n".join(lines)


def _header(first: str) -> str:
    return f"| {first} | " + " | ".join(name for name, _ in COLUMNS) + " |"


def _rule() -> str:
    return "|---|" + "---:|" * len(COLUMNS)


def _ratios(label: str, numerator: Row, denominator: Row) -> str:
    cells = [_ratio(get(numerator), get(denominator)) for _, get in COLUMNS]
    return f"| {label} | " + " | ".join(cells) + " |"


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:,.1f}x" if a is not None and b else "n/a"


def _maybe(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"
