"""The one measurement loop both systems run through, so each is timed, probed and checked the same way.

Standard library only: the LangGraph side runs this module in its own virtualenv.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

import probes
import words
from results import Run, Snapshot, Turn

LAST = 50  # messages read back at each checkpoint, as a chat UI shows the end of a long conversation
READS = 5  # timed reads per checkpoint; the table gives their median
IDLE_SECONDS = 2.0  # how long the server's background WAL rate is sampled before the turns


class System(Protocol):
    @property
    def probe(self) -> probes.Probe:
        """A connection of its own to the system's database: never the one measured."""
        ...

    async def append_turn(self, turn: int) -> None:
        """Stores words.user_message(turn) and the assistant's reply, as the system's clients would."""
        ...

    async def last_messages(self, count: int) -> list[str]:
        """The contents of the thread's last `count` messages, oldest first."""
        ...


def log(message: str) -> None:
    # stderr: the LangGraph side's stdout carries its results.
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


async def run(system: System, run: Run, turns: int, checkpoints: Sequence[int], constant_reply: bool = False) -> Run:
    own = await probes.enable_own_wal(system.probe)
    if not own:
        log(f"{run.system}: no pg_walinspect on this server: only the server-wide WAL is measured")
    run.info["idle server"] = f"{await idle_wal_rate(system):,.0f} B/s of WAL in {IDLE_SECONDS:g} s before the turns"
    # Each turn's window starts where the previous one ended, so WAL the system writes after answering
    # (threadstore publishes events after commit) still counts, for the next turn.
    position = own_from = await probes.wal_position(system.probe)
    started = time.perf_counter()
    for turn in range(1, turns + 1):
        t0 = time.perf_counter()
        await system.append_turn(turn)
        write_ms = (time.perf_counter() - t0) * 1000
        now = await probes.wal_position(system.probe)
        own_bytes = None
        if own:
            own_bytes, own_from = await probes.own_wal(system.probe, own_from, now)
        run.turns.append(Turn(turn, write_ms, now - position, own_bytes))
        position = now
        if turn in checkpoints:
            run.snapshots.append(await snapshot(system, turn, constant_reply))
            log(f"{run.system}: turn {turn:,} after {time.perf_counter() - started:,.0f} s")
    return run


async def idle_wal_rate(system: System) -> float:
    before = await probes.wal_position(system.probe)
    await asyncio.sleep(IDLE_SECONDS)
    return (await probes.wal_position(system.probe) - before) / IDLE_SECONDS


async def snapshot(system: System, turn: int, constant_reply: bool) -> Snapshot:
    table_bytes, table_rows = await probes.tables(system.probe)
    want = expected_last(turn, LAST, constant_reply)
    read_ms = []
    for _ in range(READS):
        t0 = time.perf_counter()
        got = await system.last_messages(LAST)
        read_ms.append((time.perf_counter() - t0) * 1000)
        # Not a speed assertion: a store that lost or reordered messages would make every number meaningless.
        if got != want:
            raise RuntimeError(f"turn {turn}: the last {LAST} messages read back are not the ones written")
    return Snapshot(turn, table_bytes, table_rows, read_ms)


def expected_last(turn: int, count: int, constant_reply: bool) -> list[str]:
    conversation: list[str] = []
    for t in range(max(1, turn - count // 2), turn + 1):
        conversation += [words.user_message(t), words.assistant_reply(t, constant_reply)]
    return conversation[-count:]


def parse_checkpoints(text: str, turns: int) -> list[int]:
    """`10,100,500,1000` → [10, 100, 500, 1000]; every checkpoint must be a turn that is run."""
    points = sorted({int(part) for part in text.split(",") if part.strip()})
    if not points or points[0] < 1 or points[-1] > turns:
        raise ValueError(f"checkpoints must be between 1 and --turns ({turns}): {text!r}")
    return points
