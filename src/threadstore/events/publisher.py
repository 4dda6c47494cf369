"""The publisher: decides how far event ids are delivered — without writing to any event.

An event's id is taken when its row is inserted, and that id is its position in every stream. Ids do not
commit in order, so a reader may not deliver "everything committed above the last id it sent": an id below it
may still commit. The publisher moves a horizon, `through`, over the ids in order. It passes an id that is
committed, and one that never will be: its transaction ended without it (a rollback), which PostgreSQL's
snapshot tells — every transaction older than the snapshot's xmin has ended, and an event's writer has its
transaction id before it takes the event's id (`threadstore_next_event_id()`). Readers deliver ids up to
`through` only (events/hub.py, events/stream.py). In the common case this is all: the publisher only reads,
and each event is written once, by its writer.

An id whose transaction is still running after `patience` (a long transaction: a large write, a slow client
of a keyed request) does not hold back everyone's events: the publisher records it as a gap (event_gaps)
and moves on. If it commits later, it is delivered then, under a new position taken from the id sequence
(event_late), so positions still grow in every stream and nothing is skipped or repeated. A transaction that
is long but elsewhere (a batch job, another database) holds back the xmin, not `through`: a rolled-back id
behind it is recorded as a gap after `patience`, and the gap is dropped once that transaction ended.

Writes happen only then, and now and then to record `through` (so a restart does not look at every event
again). Publishers of all instances take turns: any number may look at once, one records with nobody
looking (an advisory lock, shared or alone), so a gap is never an id another publisher saw committed.
Instances tell each other how far they got (NOTIFY); the periodic sweep also catches events of an instance
that died between its commit and its publisher's run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from threadstore.db.unit_of_work import Database, Tx
from threadstore.errors import DomainError
from threadstore.events import repository
from threadstore.events.repository import Sighting

log = logging.getLogger("threadstore.events")

BATCH = 1000
PATIENCE_SECONDS = 0.2  # how long an undecided id may hold delivery back before it becomes a gap
RECHECK_SECONDS = 0.005  # how soon to look again at an undecided id (first; then a quarter of its age)
COALESCE_SECONDS = 0.002  # after a wake, how long more commits may gather before the look
RECORD_EVERY_IDS = 10_000  # `through` is recorded when it moved this far…
RECORD_EVERY_SECONDS = 10.0  # …or this long after it moved


@dataclass
class Walk:
    """Where a look at committed ids got: `through`; the first undecided id that stopped it (`blocked`);
    when recording, the undecided ids passed as gaps (id → horizon); and whether a full batch was seen."""

    through: int
    blocked: int | None = None
    new_gaps: dict[int, int] = field(default_factory=dict)
    more: bool = False


class Publisher:
    def __init__(
        self,
        database: Database,
        on_published: Callable[[int], None],
        *,
        sweep_interval: float,
        batch: int = BATCH,
        patience: float = PATIENCE_SECONDS,
    ) -> None:
        self._database = database
        self._on_published = on_published
        self._sweep_interval = sweep_interval
        self._batch = batch
        self._patience = patience
        self._through: int | None = None
        self._recorded_at = time.monotonic()
        # Ids seen missing below a committed one: the first xmax that saw each missing, and when.
        self._missing_since: dict[int, tuple[int | None, float]] = {}
        self._turn = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopped = False
        # The unit of work calls this after each commit that recorded events.
        database.on_events_committed = self.wake

    @property
    def through(self) -> int | None:
        """How far ids are known to be delivered (None before the first look)."""
        return self._through

    def wake(self) -> None:
        self._wake.set()

    def heard(self, through: int) -> None:
        """Another instance got `through` this far (NOTIFY): start the next look there."""
        if self._through is None or through > self._through:
            self._through = through

    def stop(self) -> None:
        self._stopped = True
        self._wake.set()
        self._database.on_events_committed = None

    async def current(self) -> int:
        """`through`, looking first if this process has not looked yet."""
        return self._through if self._through is not None else await self.publish_all()

    async def publish_all(self, *, force: bool = False, record: bool = False) -> int:
        """Moves `through` as far as committed events allow, and returns it. `force`: ids still undecided are
        recorded as gaps at once, so `through` passes every event committed before this call (a new stream
        starts there). `record`: also record `through` now (at shutdown, so a restart starts there)."""
        async with self._turn:
            while True:
                seen, walk = await self._database.read_consistent(self._look)
                if self._must_record(seen, walk, force) or (record and walk.through > seen.published_through):
                    walk = await self._database.write(self._record)
                    self._recorded_at = time.monotonic()
                self._advance(walk.through)
                if walk.more:
                    continue
                if walk.blocked is None:
                    return max(walk.through, self._through or 0)
                # An undecided id: it commits or ends in a moment. Looks again soon, then less often.
                _, since = self._missing_since[walk.blocked]
                await asyncio.sleep(max(RECHECK_SECONDS, (time.monotonic() - since) / 4))

    async def run_forever(self) -> None:
        while not self._stopped:
            woken = await wait_for_signal(self._wake, self._sweep_interval)
            if woken:
                # Commits come in bursts under load: one look a moment later covers many (a look is a short
                # transaction of five round trips on the request path's event loop), for 2 ms of latency.
                await asyncio.sleep(COALESCE_SECONDS)
            self._wake.clear()
            try:
                before = self._through
                # A sweep first asks cheaply (one read) whether there is anything to look at.
                if (
                    not woken
                    and before is not None
                    and not await self._database.read(repository.anything_to_look_at, before)
                ):
                    continue
                await self.publish_all()
            except DomainError as error:  # database busy or down: the next sweep tries again
                log.warning("publishing events failed: %s", error.detail)
                await asyncio.sleep(self._sweep_interval)
            except Exception:  # a bug must not stop delivery for the life of the process
                log.exception("publishing events failed")
                await asyncio.sleep(self._sweep_interval)

    async def _look(self, tx: Tx) -> tuple[Sighting, Walk]:
        await repository.take_turn(tx, alone=False)
        seen = await repository.sight(tx, self._through, self._batch)
        walk = self._walk(seen, recording=False)
        if walk.through > (self._through or seen.published_through):
            await repository.notify(tx, walk.through)  # other instances; sent as this look commits
        return seen, walk

    async def _record(self, tx: Tx) -> Walk:
        await repository.take_turn(tx, alone=True)
        seen = await repository.sight(tx, self._through, self._batch)
        walk = self._walk(seen, recording=True)
        late = await repository.record(
            tx,
            published_through=walk.through,
            new_gaps=walk.new_gaps,
            resolved_gaps=[*seen.committed_gaps, *_dead_gaps(seen)],
            late=seen.committed_gaps,
        )
        if late:
            walk.more = True  # their new positions are above `through`: look again to pass them
        await repository.notify(tx, walk.through)
        return walk

    def _walk(self, seen: Sighting, *, recording: bool) -> Walk:
        """How far the ids of `seen` can be passed, from where this process got (or the recorded point)."""
        # Another instance may have recorded a point beyond where this one got: nothing below it is undecided.
        walk = Walk(max(self._through or 0, seen.published_through))
        for present in seen.present:
            if present <= walk.through:
                continue
            for missing in range(walk.through + 1, present):
                if missing in seen.gaps or self._ended(missing, seen):
                    continue
                if not recording:
                    walk.blocked = missing
                    return walk
                # Below a committed id, so its transaction id is below this snapshot's xmax.
                assert seen.next_xid is not None
                walk.new_gaps[missing] = seen.next_xid
            walk.through = present
        walk.more = len(seen.present) == self._batch
        return walk

    def _ended(self, missing: int, seen: Sighting) -> bool:
        """Whether the transaction that took id `missing` has ended (so, not committed: it is not in `seen`)."""
        if seen.oldest_running is None or seen.next_xid is None:
            return True  # SQLite: the writers never overlap a reader, so a missing id was rolled back
        first_xmax, _ = self._missing_since.setdefault(missing, (seen.next_xid, time.monotonic()))
        assert first_xmax is not None
        return seen.oldest_running >= first_xmax

    def _must_record(self, seen: Sighting, walk: Walk, force: bool) -> bool:
        if seen.committed_gaps or _dead_gaps(seen):
            return True
        if walk.blocked is not None:
            _, since = self._missing_since[walk.blocked]
            if force or time.monotonic() - since >= self._patience:
                return True
        moved = walk.through - seen.published_through
        return moved >= RECORD_EVERY_IDS or (moved > 0 and time.monotonic() - self._recorded_at >= RECORD_EVERY_SECONDS)

    def _advance(self, through: int) -> None:
        if self._through is not None and through <= self._through:
            return
        self._through = through
        for missing in [m for m in self._missing_since if m <= through]:
            del self._missing_since[missing]
        self._on_published(through)


def _dead_gaps(seen: Sighting) -> list[int]:
    """Recorded gaps whose transaction has ended without committing them: they never will."""
    if seen.oldest_running is None:
        return []
    committed = set(seen.committed_gaps)
    return [gap for gap, horizon in seen.gaps.items() if gap not in committed and seen.oldest_running >= horizon]


async def wait_for_signal(signal: asyncio.Event, seconds: float) -> bool:
    """Whether `signal` was set within `seconds`. Not `asyncio.wait_for`: before Python 3.12 it can swallow
    a cancellation that arrives as the event is set, and a task stopped at shutdown would then run on."""
    try:
        async with asyncio.timeout(seconds):
            await signal.wait()
    except TimeoutError:
        return False
    return True
