"""What one system's run records, and its JSON form: the LangGraph side hands its run to the driver as JSON
on stdout, since it runs in another virtualenv. Standard library only: both virtualenvs import it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Turn:
    turn: int
    write_ms: float  # wall clock of the whole turn (user message + assistant reply stored)
    wal_bytes: int  # server-wide WAL position after the turn minus after the previous one
    own_wal_bytes: int | None  # the WAL records of the system's database among those (None: no pg_walinspect)


@dataclass(frozen=True)
class Snapshot:
    """The state at a checkpoint turn: what is stored, and how long reading the last messages takes."""

    turn: int
    table_bytes: dict[str, int]  # every table of the system's database, indexes and TOAST included
    table_rows: dict[str, int]
    read_ms: list[float]  # each timed read of the last messages

    @property
    def stored_bytes(self) -> int:
        return sum(self.table_bytes.values())


@dataclass
class Run:
    system: str
    info: dict[str, str] = field(default_factory=dict)  # versions and settings, printed with the table
    turns: list[Turn] = field(default_factory=list)
    snapshots: list[Snapshot] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Run:
        raw: dict[str, Any] = json.loads(text)
        return cls(
            system=raw["system"],
            info=raw["info"],
            turns=[Turn(**t) for t in raw["turns"]],
            snapshots=[Snapshot(**s) for s in raw["snapshots"]],
        )
