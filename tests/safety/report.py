"""Collects the sweeps' figures during the run; the safety conftest prints them at the end."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class SweepResult:
    endpoint: str
    kind: str
    operations: list[str]
    replays: int
    outcomes: dict[str, int]


SWEEPS: list[SweepResult] = []


def record_sweep(endpoint: str, kind: str, operations: list[str], replays: int, outcomes: dict[str, int]) -> None:
    SWEEPS.append(SweepResult(endpoint, kind, operations, replays, outcomes))


def table() -> list[str]:
    lines = [f"{'endpoint':<28} {'database':<11} {'ops':>4} {'replays':>8}  outcomes"]
    for r in sorted(SWEEPS, key=lambda r: (r.endpoint, r.kind)):
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(r.outcomes.items()))
        lines.append(f"{r.endpoint:<28} {r.kind:<11} {len(r.operations):>4} {r.replays:>8}  {outcomes}")
    return lines
