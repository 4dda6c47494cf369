"""Reads from a streaming replica, with read-your-writes.

A replica applies the primary's WAL some time after the primary wrote it, so a read sent there may not see a
write that has already been answered. The rule that keeps a writer's reads consistent: a write's answer
carries the primary's WAL position after its commit (`X-Read-After`); a read that must see it is served by
the replica only if the replica has replayed that position (`pg_last_wal_replay_lsn()`), otherwise by the
primary, at once. No read waits for the replica: the primary is the fresher answer and is always there.

What a read must see is the highest of: the position the client sent, the writes of its own request, and the
last write of the same user through this process (so a client that sends nothing still reads its own writes
when it stays on one instance). The replica's replayed position only grows, so it is remembered, and a read
whose need it already meets costs no extra round trip.

A replica that cannot be reached, loses its connection or cancels a read (a recovery conflict) never turns a
read into an error: that read goes to the primary, and after a failure to connect the replica is left alone
for a while rather than costing every read a connect timeout.
"""

from __future__ import annotations

import logging
import re
import time
from collections import OrderedDict
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from threadstore import metrics

log = logging.getLogger("threadstore.db")

# PostgreSQL's text form of a WAL position: two hexadecimal halves of a 64-bit number.
POSITION_PATTERN: Final = r"^[0-9A-Fa-f]{1,8}/[0-9A-Fa-f]{1,8}$"
_POSITION = re.compile(POSITION_PATTERN)
USERS_REMEMBERED: Final = 100_000


def parse_position(value: str) -> int | None:
    if not _POSITION.match(value):
        return None
    high, low = value.split("/")
    return int(high, 16) << 32 | int(low, 16)


def format_position(position: int) -> str:
    return f"{position >> 32:X}/{position & 0xFFFFFFFF:X}"


class LastWrites:
    """The WAL position of each user's last write through this process; the oldest users are forgotten first,
    so memory stays bounded (a forgotten user's reads rely on the position the client sends)."""

    def __init__(self, capacity: int = USERS_REMEMBERED) -> None:
        self._positions: OrderedDict[str, int] = OrderedDict()
        self._capacity = capacity

    def get(self, user_id: str) -> int:
        return self._positions.get(user_id, 0)

    def note(self, user_id: str, position: int) -> None:
        if position > self._positions.get(user_id, 0):
            self._positions[user_id] = position
        self._positions.move_to_end(user_id)
        if len(self._positions) > self._capacity:
            self._positions.popitem(last=False)


@dataclass
class ReadAfter:
    """One request's consistency: what its reads must see, and the position its writes reached."""

    last_writes: LastWrites
    sent: int = 0  # the client's X-Read-After
    written: int = 0  # the highest position a write of this request committed at
    user_id: str | None = None

    def needed(self) -> int:
        mine = self.last_writes.get(self.user_id) if self.user_id is not None else 0
        return max(self.sent, self.written, mine)

    def wrote(self, position: int) -> None:
        self.written = max(self.written, position)
        if self.user_id is not None:
            self.last_writes.note(self.user_id, position)


# Set per request by the HTTP layer when a replica is configured; None elsewhere (maintenance, events).
READ_AFTER: ContextVar[ReadAfter | None] = ContextVar("threadstore_read_after", default=None)


class Behind(Exception):
    """The replica has not replayed what the read must see."""


@dataclass
class ReplicaState:
    """What this process knows of the replica: how far it has replayed, and whether to leave it alone."""

    retry_after_seconds: float
    replayed: int = 0  # the highest position the replica was seen to have replayed
    _resting_until: float = field(default=0.0)

    def usable(self) -> bool:
        return time.monotonic() >= self._resting_until

    def rest(self) -> None:
        if self.usable():
            log.warning("read replica failed; reads go to the primary for %.0f s", self.retry_after_seconds)
        self._resting_until = time.monotonic() + self.retry_after_seconds
        # What comes back may be another standby (a failover, a balancer over several): it is asked anew.
        self.replayed = 0

    def caught_up_with(self, needed: int) -> bool:
        """Known without asking: the replica has replayed `needed`."""
        return needed <= self.replayed

    async def check(self, conn: AsyncConnection, needed: int) -> None:
        """On the read's own connection, before its statements: raises `Behind` unless the replica has
        replayed `needed` (replay only moves forward, so the statements after this see at least as much)."""
        position = (await conn.execute(_REPLAYED)).scalar_one()
        if position is not None:
            self.replayed = max(self.replayed, int(position))
        if position is None or int(position) < needed:
            raise Behind()


# On a standby: what it has replayed. Pointed at a primary by mistake it is never behind.
_REPLAYED = text("SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END")


def count(served_by: str, reason: str) -> None:
    metrics.READS.labels(served_by, reason).inc()
