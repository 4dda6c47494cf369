"""All SQL of event delivery: what the publisher sees, what it records, reading delivered events, pruning and
erasing them. How the pieces fit is events/publisher.py's docstring."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import (
    LargeBinary,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    select,
    text,
    tuple_,
    union_all,
    update,
)

from threadstore import legacy
from threadstore.db import event_body
from threadstore.db.outbox import MESSAGE_CREATED, THREAD_CREATED, THREAD_UPDATED
from threadstore.db.tables import event_gaps, event_late, event_state, events, messages
from threadstore.db.unit_of_work import Tx

# Any constant shared by every instance: publishers of all processes take turns on it.
PUBLISH_LOCK_ID = 0x7468726576656E74  # "threvent"
CHANNEL = "threadstore_events"


@dataclass(frozen=True, slots=True)
class PublishedEvent:
    """A delivered event as stored (db/event_body.py): its JSON is made only when it is sent (`json`), so a
    page or a stream's queue holds each event compact, and one event's JSON at a time exists per stream."""

    position: int
    user_id: str
    type: str
    body: bytes
    member: str | None
    content: str | None
    thread_id: str
    at: datetime  # the event row's time: with `thread_id`, what a body leaves out (db/event_body.py)
    size: int  # the bytes it holds, about (what bounds a page and a stream's queue)
    legacy: str | None = None  # members an object stored before version 2 lacks (legacy.py)

    def json(self) -> bytes:
        """The object as the API returned it: JSON text, one line."""
        members = self.member if self.legacy is None else ",".join(filter(None, (self.member, self.legacy)))
        return event_body.json_bytes(self.body, members, self.content, self.thread_id, self.at)


@dataclass(frozen=True)
class DeliveredPage:
    events: list[PublishedEvent]
    more: bool  # the range goes on after the last event (the page was cut by count or by bytes)


@dataclass(frozen=True)
class Sighting:
    """What one snapshot shows above an id.

    `present`: committed event ids and late positions above it, ascending. `gaps`: the recorded gaps (id →
    horizon) and `committed_gaps` those of them whose event has committed since. On PostgreSQL `oldest_running`
    (the snapshot's xmin: every older transaction has ended) and `next_xid` (its xmax: every transaction id
    handed out so far is below it); None on SQLite, whose writers never overlap the reader."""

    published_through: int
    pruned_through: int
    present: list[int]
    gaps: dict[int, int]
    committed_gaps: list[int]
    oldest_running: int | None
    next_xid: int | None


_READ_COMMITTED = text("SET TRANSACTION ISOLATION LEVEL READ COMMITTED")
_SHARED_TURN = text("SELECT pg_advisory_xact_lock_shared(:key)")
_OWN_TURN = text("SELECT pg_advisory_xact_lock(:key)")
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


async def take_turn(tx: Tx, *, alone: bool) -> None:
    """Publishers' turns (PostgreSQL): any number may look at once (shared); one records, with nobody looking
    (`alone`). Then a statement's snapshot follows every record made before — whatever the configured
    isolation level, as the lock is taken before the first snapshot that reads events. SQLite: a writer holds
    the database's write lock already and nothing overlaps it."""
    if tx.dialect != "postgresql":
        return
    await tx.conn.execute(_READ_COMMITTED)
    await tx.conn.execute(_OWN_TURN if alone else _SHARED_TURN, {"key": PUBLISH_LOCK_ID})


_ABOVE = bindparam("after", type_=events.c.id.type)
_LIMIT: Any = bindparam("limit")
_PRESENT = (
    union_all(
        select(events.c.id.label("id")).where(events.c.id > _ABOVE),
        select(event_late.c.position.label("id")).where(event_late.c.position > _ABOVE),
    )
    .order_by("id")
    .limit(_LIMIT)
)
_STATE = select(event_state.c.published_through, event_state.c.pruned_through)
_GAPS = select(event_gaps.c.event_id, event_gaps.c.horizon).order_by(event_gaps.c.event_id)
_COMMITTED_GAPS = select(event_gaps.c.event_id).join(events, events.c.id == event_gaps.c.event_id)
# One statement, so one snapshot: which ids are committed, and which transactions had ended when they were.
_SIGHT_PG = text(
    """
    SELECT s.published_through, s.pruned_through,
           pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS oldest_running,
           pg_snapshot_xmax(pg_current_snapshot())::text::bigint AS next_xid,
           ARRAY(SELECT id FROM (SELECT id FROM events WHERE id > :after
                                 UNION ALL SELECT position FROM event_late WHERE position > :after) AS p
                 ORDER BY id LIMIT :limit) AS present,
           ARRAY(SELECT event_id FROM event_gaps ORDER BY event_id) AS gap_ids,
           ARRAY(SELECT horizon FROM event_gaps ORDER BY event_id) AS gap_horizons,
           ARRAY(SELECT g.event_id FROM event_gaps AS g JOIN events AS e ON e.id = g.event_id) AS committed_gaps
    FROM event_state AS s
    """
)


async def sight(tx: Tx, after: int | None, limit: int) -> Sighting:
    """What is committed above `after` (None: above the recorded `published_through`), up to `limit` ids."""
    if tx.dialect == "postgresql":
        if after is None:
            after = int((await tx.conn.execute(_STATE)).one().published_through)
        row = (await tx.conn.execute(_SIGHT_PG, {"after": after, "limit": limit})).one()
        return Sighting(
            published_through=row.published_through,
            pruned_through=row.pruned_through,
            present=list(row.present),
            gaps=dict(zip(row.gap_ids, row.gap_horizons, strict=True)),
            committed_gaps=list(row.committed_gaps),
            oldest_running=row.oldest_running,
            next_xid=row.next_xid,
        )
    # SQLite: the read transaction's statements share one snapshot.
    state = (await tx.conn.execute(_STATE)).one()
    if after is None:
        after = int(state.published_through)
    present = (await tx.conn.execute(_PRESENT, {"after": after, "limit": limit})).scalars().all()
    gaps = {int(r.event_id): int(r.horizon) for r in await tx.conn.execute(_GAPS)}
    committed = (await tx.conn.execute(_COMMITTED_GAPS)).scalars().all() if gaps else []
    return Sighting(
        published_through=int(state.published_through),
        pruned_through=int(state.pruned_through),
        present=[int(p) for p in present],
        gaps=gaps,
        committed_gaps=[int(c) for c in committed],
        oldest_running=None,
        next_xid=None,
    )


_ANYTHING_NEW = select(
    exists().where(events.c.id > bindparam("after"))
    | exists().where(event_late.c.position > bindparam("after"))
    | exists().select_from(event_gaps)
)


async def anything_to_look_at(tx: Tx, after: int) -> bool:
    """Whether a look could move `through` past `after`: one cheap read for the periodic sweep."""
    return bool((await tx.conn.execute(_ANYTHING_NEW, {"after": after})).scalar_one())


_LATE_PG = text(
    """
    INSERT INTO event_late (position, event_id)
    SELECT threadstore_next_event_id(), id FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS l(id, n)
    ORDER BY n
    RETURNING position
    """
)


async def record(
    tx: Tx,
    *,
    published_through: int,
    new_gaps: dict[int, int],
    resolved_gaps: Sequence[int],
    late: Sequence[int],
) -> list[int]:
    """Records a publisher's decisions: gaps passed, gaps resolved, events delivered late (returns their new
    positions), and how far ids are delivered. Only while the publisher has its turn alone."""
    if resolved_gaps:
        await tx.conn.execute(delete(event_gaps).where(event_gaps.c.event_id.in_(list(resolved_gaps))))
    if new_gaps:
        await tx.conn.execute(insert(event_gaps), [{"event_id": i, "horizon": h} for i, h in new_gaps.items()])
    positions: list[int] = []
    if late:
        if tx.dialect != "postgresql":
            raise RuntimeError("late events exist only where writers overlap (PostgreSQL)")
        positions = [int(p) for p in (await tx.conn.execute(_LATE_PG, {"ids": list(late)})).scalars()]
    await tx.conn.execute(
        update(event_state).values(
            published_through=func.greatest(event_state.c.published_through, published_through)
            if tx.dialect == "postgresql"
            else func.max(event_state.c.published_through, published_through)
        )
    )
    return positions


async def notify(tx: Tx, through: int) -> None:
    """Tells other instances (LISTEN) that ids up to `through` are delivered; sent when the unit commits."""
    if tx.dialect == "postgresql":
        await tx.conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": str(through)})


# Whose delivered events a read takes: everyone's (the hub's fan-out), one user's (a stream's catch-up), or one
# thread's of one user (a one-thread stream's catch-up, `GET /api/events?thread_id=`).
EVERYONE, USER, THREAD = "everyone", "user", "thread"


def _delivered(scope: str, dialect: str) -> Any:
    """Delivered events in (after, through], in position order: by id, and the late ones by their position.
    Content by reference (db/event_body.py) is joined from the message row; an event whose message is gone
    was erased with it and is skipped.

    A page holds up to `limit` events and stops once the bytes before an event reach `max_bytes`: a window of
    positions and sizes is read first (sizes from lengths, not from the values: PostgreSQL reads a TOASTed
    value's length from its pointer), then the kept events are joined back by id, so neither server copies
    the values of events left for the next page. `rows`: how many the window held, so the caller knows whether
    the range goes on."""

    def octets(value: Any) -> Any:
        # SQLite before 3.43 has no octet_length(); a text's byte length is that of the same value as a BLOB.
        return func.octet_length(value) if dialect == "postgresql" else func.length(cast(value, LargeBinary))

    # The message is probed per row (not joined), so both servers walk the ids in order and stop at `limit`.
    referenced = messages.c.id == events.c.content_of
    content_size = select(octets(messages.c.content)).where(referenced).scalar_subquery()
    size = octets(events.c.body) + func.coalesce(octets(events.c.member), 0) + func.coalesce(content_size, 0)
    # An event about a message (its content joined, or its text carried inline) is erased with the message.
    about = func.coalesce(events.c.content_of, events.c.message_id)
    kept = about.is_(None) | exists().where(messages.c.id == about)
    by_id = (
        select(events.c.id.label("position"), events.c.id.label("event_id"), size.label("size"))
        .where(events.c.id > bindparam("after"), events.c.id <= bindparam("through"), kept)
        .where(~exists().where(event_gaps.c.event_id == events.c.id))
        .where(~exists().where(event_late.c.event_id == events.c.id))
    )
    late = (
        select(event_late.c.position, events.c.id.label("event_id"), size.label("size"))
        .select_from(event_late.join(events, events.c.id == event_late.c.event_id))
        .where(event_late.c.position > bindparam("after"), event_late.c.position <= bindparam("through"), kept)
    )
    if scope in (USER, THREAD):
        by_id = by_id.where(events.c.user_id == bindparam("user_id"))
        late = late.where(events.c.user_id == bindparam("user_id"))
    if scope == THREAD:
        # By id, this walks ix_events_thread_id (thread_id, id) in order: a thread's catch-up reads its own
        # events only, however many other threads wrote since. The user's condition is checked on those rows.
        by_id = by_id.where(events.c.thread_id == bindparam("thread_id"))
        late = late.where(events.c.thread_id == bindparam("thread_id"))
    # Each part walks its own index in order and stops at `limit`; only their first `limit` together are kept.
    parts = [part.order_by("position").limit(bindparam("limit")).subquery() for part in (by_id, late)]
    window = union_all(*(select(part) for part in parts)).order_by("position").limit(bindparam("limit")).subquery("w")
    sized = select(
        window.c.position,
        window.c.event_id,
        window.c.size,
        (func.sum(window.c.size).over(order_by=window.c.position) - window.c.size).label("before"),
        func.count().over().label("rows"),
    ).subquery("s")
    return (
        select(
            sized.c.position,
            events.c.user_id,
            events.c.type,
            events.c.body,
            events.c.member,
            messages.c.content,
            events.c.thread_id,
            events.c.created_at,
            sized.c.size,
            sized.c.rows,
            messages.c.parent_id,
            messages.c.depth,
            messages.c.sibling_index,
        )
        .select_from(sized.join(events, events.c.id == sized.c.event_id).outerjoin(messages, referenced))
        .where(sized.c.before < bindparam("max_bytes"))
        .order_by(sized.c.position)
    )


_DELIVERED = {
    (dialect, scope): _delivered(scope, dialect)
    for dialect in ("postgresql", "sqlite")
    for scope in (EVERYONE, USER, THREAD)
}


async def delivered(
    tx: Tx,
    after: int,
    through: int,
    limit: int,
    max_bytes: int,
    user_id: str | None = None,
    thread_id: str | None = None,
) -> DeliveredPage:
    """Delivered events with positions in (after, through], in order: everyone's (what the hub fans out), one
    user's (a resuming stream's catch-up), or one thread's of that user (`thread_id`, with `user_id`). At most
    `limit` events, and no more once `max_bytes` are reached (always at least one, however large)."""
    params: dict[str, Any] = {"after": after, "through": through, "limit": limit, "max_bytes": max_bytes}
    scope = EVERYONE
    if user_id is not None:
        params["user_id"] = user_id
        scope = USER
    if thread_id is not None:
        if user_id is None:
            raise ValueError("a thread's events are read for its user")
        params["thread_id"] = thread_id
        scope = THREAD
    rows = (await tx.conn.execute(_DELIVERED[tx.dialect, scope], params)).all()
    window = int(rows[0].rows) if rows else 0
    legacy = await _legacy_members(tx, rows)
    found = [
        PublishedEvent(
            row.position,
            row.user_id,
            row.type,
            row.body,
            row.member,
            row.content,
            row.thread_id,
            row.created_at,
            int(row.size),
            legacy.get(row.position),
        )
        for row in rows
    ]
    return DeliveredPage(found, more=window == limit or len(found) < window)


_CURRENT_OF_A_LINE = select(messages.c.thread_id, messages.c.seq, messages.c.id).where(
    tuple_(messages.c.thread_id, messages.c.seq).in_(bindparam("lines", expanding=True))
)


async def _legacy_members(tx: Tx, rows: Sequence[Any]) -> dict[int, str]:
    """What the events stored before version 2 lack, by position (legacy.py): a message's place from its row,
    joined already; a thread's current message, one probe for the page's legacy thread events together."""
    found: dict[int, str] = {}
    lines: dict[int, tuple[str, int]] = {}
    for row in rows:
        # Version 2 writes in the formats version 1 reads (an instance of it may still serve streams during a
        # rolling upgrade), so an old object is told by what it lacks: a message's event names its depth among
        # the values its statement supplied (`member`); a thread's object names its current message.
        if row.type == MESSAGE_CREATED:
            members = []
            if row.depth is not None and '"depth"' not in (row.member or ""):
                members.append(legacy.message_members(row.parent_id, row.depth, row.sibling_index))
            if legacy.REPLY_MARK.encode() not in event_body.stored(row.body):
                members.append(legacy.REPLY_MEMBERS)
            if members:
                found[row.position] = ",".join(members)
        elif row.type in (THREAD_CREATED, THREAD_UPDATED):
            text = event_body.stored(row.body)
            if b'"current_message_id"' in text:
                continue
            data = orjson.loads(text)
            if isinstance(data, dict) and isinstance(data.get("message_count"), int):
                lines[row.position] = (row.thread_id, data["message_count"])
    if lines:
        wanted = [line for line in set(lines.values()) if line[1] > 0]
        last = {}
        if wanted:
            last = {(r.thread_id, r.seq): r.id for r in await tx.conn.execute(_CURRENT_OF_A_LINE, {"lines": wanted})}
        for position, line in lines.items():
            found[position] = legacy.thread_members(last.get(line))
    return found


async def pruned_through(tx: Tx) -> int:
    return int((await tx.conn.execute(select(event_state.c.pruned_through))).scalar_one())


async def delete_expired_prefix(tx: Tx, cutoff: datetime, batch: int) -> int:
    """Deletes the oldest delivered events, in position order, while they are older than `cutoff`.

    Only a prefix of positions goes, up to what the publisher has recorded as delivered, and `pruned_through`
    moves with it: a resume point below it has lost events (409). An event delivered late stays while its
    position is kept."""
    state = (await tx.conn.execute(_STATE)).one()
    oldest = (
        await tx.conn.execute(
            select(events.c.id, events.c.created_at)
            .where(events.c.id > state.pruned_through, events.c.id <= state.published_through)
            .order_by(events.c.id)
            .limit(batch)
        )
    ).all()
    expired = 0
    for event_id, created_at in oldest:
        if created_at >= cutoff:
            break
        expired = event_id
    if not expired:
        return 0
    # An event delivered late, or still undecided, is kept while its position (to come) is.
    kept_late = exists().where(event_late.c.event_id == events.c.id, event_late.c.position > expired)
    undecided = exists().where(event_gaps.c.event_id == events.c.id)
    result = await tx.conn.execute(delete(events).where(events.c.id <= expired, ~kept_late, ~undecided))
    await tx.conn.execute(delete(event_late).where(event_late.c.position <= expired))
    # Never backwards: two instances' pruning may overlap, and the later commit may have computed the older
    # bound; a resume point it would uncover has lost events (409), never a silent gap.
    forward = case((event_state.c.pruned_through < expired, expired), else_=event_state.c.pruned_through)
    await tx.conn.execute(update(event_state).values(pruned_through=forward))
    return int(result.rowcount)


async def erase_thread(tx: Tx, user_id: str, thread_id: str, keep_type: str) -> int:
    """Deletes the user's kept events about `thread_id`, but those of type `keep_type` (its deletion)."""
    stmt = delete(events).where(
        events.c.user_id == user_id, events.c.thread_id == thread_id, events.c.type != keep_type
    )
    return int((await tx.conn.execute(stmt)).rowcount)
