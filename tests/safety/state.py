"""The database as data: a full snapshot of every table, read on a side connection, and the invariants every
safety test checks after a request (exact state, no leak, no open transaction, no internal text)."""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from scripts.torture.replies import reply_violations
from scripts.torture.tree import tree_violations
from sqlalchemy import MetaData, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from tests.conftest import Api, Backend, idle_in_transaction, new_user
from tests.http.problems import assert_problem
from threadstore.db import event_body

Row = tuple[Any, ...]
Snapshot = dict[str, list[Row]]

# Words that would betray internals in a client-facing body.
INTERNAL_TEXT = [
    "select ",
    "insert ",
    "update ",
    "delete from",
    "commit",
    "traceback",
    "sqlalchemy",
    "asyncpg",
    "sqlite",
    "psycopg",
    "operationalerror",
    "interfaceerror",
    "dbapierror",
    "exception",
    "fault injected",
    "deferred check",
    "disk i/o",
    "pg_",
    ".py",
]


async def snapshot(backend: Backend) -> Snapshot:
    """Every table of the schema, every column, ordered by primary key, read outside the app (but the event
    publisher's bookkeeping, which it writes on its own schedule: an event row itself is never changed)."""
    engine = create_async_engine(backend.url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(_dump)
    finally:
        await engine.dispose()


async def settle(backend: Backend) -> None:
    """Waits until the database's state no longer depends on background work (see `snapshot`)."""
    await snapshot(backend)


_COLUMNS: dict[str, list[str]] = {}
# Written by the event publisher in the background, on its own schedule, never by a request.
_DELIVERY_BOOKKEEPING = {"event_state", "event_gaps", "event_late"}


# The reflected schema of each database: reflecting it was most of a snapshot's time (~0.25 s of PostgreSQL's
# catalog queries), and a database's tables do not change once migrated.
_SCHEMAS: dict[str, MetaData] = {}


def _dump(conn: Connection) -> Snapshot:
    key = conn.engine.url.render_as_string(hide_password=False)
    schema = _SCHEMAS.get(key)
    if schema is None:
        schema = _SCHEMAS[key] = MetaData()
        schema.reflect(conn)
    dumped: Snapshot = {}
    if conn.dialect.name == "sqlite":
        # Search's FTS index (migration 0008) is compared through its content table, search_docs: its own
        # tables are blobs of counters. That it holds exactly what search_docs says is checked here instead.
        conn.execute(text("INSERT INTO search_fts (search_fts, rank) VALUES ('integrity-check', 1)"))
    for table in schema.sorted_tables:
        if table.name in _DELIVERY_BOOKKEEPING or table.name.startswith("search_fts"):
            continue
        _COLUMNS[table.name] = [c.name for c in table.columns]
        order = list(table.primary_key.columns) or list(table.columns)
        dumped[table.name] = [tuple(row) for row in conn.execute(select(table).order_by(*order))]
    return dumped


# Values that differ between two runs of the same request: server-chosen ids, clocks, fresh user ids.
_VOLATILE = re.compile(
    r"(?:thr|msg)_[A-Za-z0-9_-]{22}|user-[0-9a-f]{12}"
    # A user's search owner term (db/search_terms.py): PostgreSQL's hash, SQLite's hexadecimal user id.
    r"|#[0-9a-f]{16}|\bu(?:[0-9a-f]{2}){8,}\b"
    r"|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2})?"
)


def _mask(value: Any) -> Any:
    if isinstance(value, datetime):
        return "<time>"
    if isinstance(value, str):
        return _VOLATILE.sub("<v>", value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return value


@dataclass(frozen=True)
class Delta:
    """What a request changed, with run-specific values masked: comparable across two runs."""

    removed: dict[str, Counter[str]]
    added: dict[str, Counter[str]]

    @property
    def empty(self) -> bool:
        return not any(self.removed.values()) and not any(self.added.values())


def delta(before: Snapshot, after: Snapshot) -> Delta:
    removed: dict[str, Counter[str]] = {}
    added: dict[str, Counter[str]] = {}
    for table in sorted(set(before) | set(after)):
        old, new = Counter(map(repr, before.get(table, []))), Counter(map(repr, after.get(table, [])))
        rows_before = {repr(r): r for r in before.get(table, [])}
        rows_after = {repr(r): r for r in after.get(table, [])}
        removed[table] = Counter(repr(_masked_row(table, rows_before[k])) for k in (old - new).elements())
        added[table] = Counter(repr(_masked_row(table, rows_after[k])) for k in (new - old).elements())
    return Delta(removed, added)


_BRANCH_COUNTERS = {
    "search_docs": ("id",),  # SQLite's rowid of an indexed text, drawn as a counter too
    "threads": ("current_branch_id",),
    "branches": ("id", "parent_branch_id", "jump_id"),
    "messages": ("branch_id",),
}


def _masked_row(table: str, row: Row) -> Row:
    columns = _COLUMNS.get(table, [])
    masked = tuple(_mask(v) for v in row)
    if table == "events":
        # The id is a counter shared by every run: it differs between runs by construction. The body is
        # compressed: masked as the JSON it holds.
        masked = tuple(
            "<counter>" if c == "id" else _mask(event_body.stored(v).decode()) if c == "body" else v
            for c, v in zip(columns, masked, strict=True)
        )
    # Branch ids are drawn from a counter shared by every run, as event ids are.
    counters = _BRANCH_COUNTERS.get(table, ())
    if counters:
        masked = tuple(
            "<counter>" if c in counters and v is not None else v for c, v in zip(columns, masked, strict=True)
        )
    if table == "idempotency_keys":
        masked = tuple(
            "<fingerprint>" if isinstance(v, str) and re.fullmatch(r"[0-9a-f]{64}", v) else v for v in masked
        )
    return masked


def assert_trees_consistent(snap: Snapshot, where: str) -> None:
    """The message trees of the snapshot hold every invariant (scripts/torture/tree.py): no half-deleted
    branch, no orphan, counters and the current message in agreement with the rows; and so do its streamed
    replies (scripts/torture/replies.py): deltas without gap, lengths, activity and events in agreement."""
    rows = {table: [dict(zip(_COLUMNS[table], row, strict=True)) for row in snap.get(table, [])] for table in _TREE}
    violations = tree_violations(rows["threads"], rows["messages"], rows["branches"])
    violations += reply_violations(rows["messages"], rows["message_deltas"], rows["events"])
    assert violations == [], f"{where}: {violations[:10]}"


_TREE = ("threads", "messages", "branches", "message_deltas", "events")


def describe(d: Delta) -> str:
    parts = []
    for table in sorted(d.added):
        if d.added[table] or d.removed[table]:
            parts.append(f"{table}: +{sum(d.added[table].values())} -{sum(d.removed[table].values())}")
    return ", ".join(parts) or "no change"


def assert_no_internal_text(response: httpx.Response) -> None:
    text = response.text.lower()
    for word in INTERNAL_TEXT:
        assert word not in text, (word, response.text)


def assert_clean_failure(response: httpx.Response) -> None:
    """A failed request: 5xx problem+json (503 with Retry-After) revealing nothing."""
    assert response.status_code in (500, 503), (response.status_code, response.text)
    body = assert_problem(response, response.status_code)
    assert set(body) == {"type", "title", "status", "detail", "request_id"}, body
    if response.status_code == 503:
        assert int(response.headers["retry-after"]) >= 1
    assert_no_internal_text(response)


async def assert_nothing_held(api: Api) -> None:
    """No connection checked out and (PostgreSQL) no backend of the app left idle in a transaction.

    The app's background tasks (event delivery, housekeeping) check connections out briefly too, so a
    non-zero count must persist for a while before it counts as a leak."""
    pool: Any = api.database.engine.pool
    deadline = time.monotonic() + 3
    while pool.checkedout() and time.monotonic() < deadline:  # noqa: ASYNC110 (polls the pool)
        await asyncio.sleep(0.01)
    assert pool.checkedout() == 0
    if api.backend.is_postgres:
        # A background unit (the event publisher's look) sits "idle in transaction" between its statements
        # for as long as the loop takes to send the next: on a busy machine a single reading can catch it. A
        # leaked transaction stays open; one of those finishes within moments.
        open_transactions = await idle_in_transaction(api.backend)
        while open_transactions and time.monotonic() < deadline + 3:
            await asyncio.sleep(0.05)
            open_transactions = await idle_in_transaction(api.backend)
        assert open_transactions == [], f"a transaction was left open: {open_transactions}"


async def assert_service_works(api: Api, user: str) -> None:
    """The next ordinary requests (a read and a write) succeed."""
    listed = await api.request("GET", "/api/threads", user=user, params={"status": "all"})
    assert listed.status_code == 200, listed.text
    created = await api.request("POST", "/api/threads", user=user, json={"title": "after the fault"})
    assert created.status_code == 201, created.text


@dataclass(frozen=True)
class CleanRun:
    """What a sweep replays against: the operations of one clean run of a request and the change it made."""

    response: httpx.Response
    operations: list[str]
    change: Delta


async def record_clean_run(api: Api, injector: Any, endpoint: Any, backend: Backend) -> CleanRun:
    """Runs `endpoint` once on fresh data for a new user with `injector` counting (and failing nothing)."""
    user = new_user()
    ctx = await endpoint.setup(api, user)
    before = await snapshot(backend)
    with injector.scope():
        response = await endpoint.call(api, user, ctx)
    assert response.status_code < 300, response.text
    after = await snapshot(backend)
    assert_trees_consistent(after, f"{endpoint.name}: the clean run")
    return CleanRun(response, list(injector.ops), delta(before, after))
