"""branches: a thread's messages form a tree, stored as branch segments

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Every thread gets a trunk branch, and every v1 thread becomes a chain on it: message seq n has depth n, its
parent is message n - 1, and the thread's current message is its last. Design and measurements:
docs/branches-design.md (§4 the steps, §5 the stored objects); the layout: db/tables.py.

Three steps, so that the previous version may keep serving throughout (§4.1):
1. schema, in the revision's transaction: nullable columns, `branches`, and the rolling-upgrade triggers that
   make the previous version's inserts come out as chains (§4.2); pre-0005 raw message events get their
   `content_of`, so a later branch delete erases them as it erases the others (§5);
2. backfill, in batches of about `Backfill.batch_messages` messages, each its own short transaction (Alembic's
   autocommit block; db/migrate.py's lock is held all along): the threads without `current_branch_id`, in id
   order. A v1 append waits at most one batch;
3. finish: stored 201 append responses name their message; the unique (branch_id, depth) index
   (`CONCURRENTLY` on PostgreSQL) and, on PostgreSQL, NOT NULL through a validated CHECK, without a long lock.

An interrupted run (a crash, a lost connection) has committed step 1 and some batches, but not the revision's
stamp: the next run finds `branches`, skips step 1 and goes on with the threads left (`current_branch_id IS
NULL` is the work left), then finishes. A later migration (not 0007), once no instance of the previous version
runs, drops the triggers (and may run the idempotency fill again for keyed appends the previous version stored
after this).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

from threadstore.db.failures import sqlstate
from threadstore.db.migrate import Backfill
from threadstore.db.migrations.concurrently import build_index

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

log = logging.getLogger("threadstore.migrate")

_BRANCH_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_THREAD_ID = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if sa.inspect(bind).has_table("branches"):
        log.info("migration 0006: its schema step was committed by an earlier, interrupted run; resuming")
    else:
        _schema(postgres)
    options = _options()
    with op.get_context().autocommit_block():
        bind = op.get_bind()
        _backfill(bind, postgres, options)
        _fill_idempotency_message_ids(bind, postgres)
        _finish(bind, postgres)


def _options() -> Backfill:
    config = op.get_context().config
    options = config.attributes.get("backfill") if config is not None else None
    return options if isinstance(options, Backfill) else Backfill()


# ------------------------------------------------------------------------------------------------ 1. schema


def _schema(postgres: bool) -> None:
    if postgres:
        # Each ALTER waits for the table's lock, and every query of the app queues behind it meanwhile: give
        # up (the migration fails, to be run again) rather than stall the service behind a long transaction.
        op.execute("SET LOCAL lock_timeout = '5s'")
    with op.batch_alter_table("threads") as batch:
        batch.add_column(sa.Column("current_message_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("current_branch_id", _BRANCH_ID, nullable=True))
        batch.add_column(sa.Column("current_depth", sa.Integer(), nullable=False, server_default=sa.text("0")))
        batch.add_column(sa.Column("deleted_count", sa.Integer(), nullable=False, server_default=sa.text("0")))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("branch_id", _BRANCH_ID, nullable=True))
        batch.add_column(sa.Column("depth", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("parent_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("sibling_index", sa.Integer(), nullable=True))
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("message_id", sa.String(64), nullable=True))
    op.create_table(
        "branches",
        sa.Column("id", _BRANCH_ID, *([sa.Identity()] if postgres else []), nullable=False),
        sa.Column("thread_id", _THREAD_ID, nullable=False),
        sa.Column("parent_branch_id", _BRANCH_ID, nullable=True),
        sa.Column("fork_depth", sa.Integer(), nullable=False),
        sa.Column("sibling_index", sa.Integer(), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("jump_id", _BRANCH_ID, nullable=True),
        sa.Column("jump_level", sa.Integer(), nullable=True),
        sa.Column("jump_fork_depth", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_branches"),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["threads.id"],
            name="fk_branches_thread_id_threads",
            ondelete="CASCADE",
            deferrable=True,
            initially="DEFERRED",
        ),
    )
    op.create_index("ix_branches_thread", "branches", ["thread_id", "parent_branch_id"])
    op.create_index("ix_branches_forks", "branches", ["parent_branch_id", "fork_depth", "sibling_index"])
    for statement in _TRIGGERS_PG if postgres else _TRIGGERS_SQLITE:
        op.execute(statement)
    _raw_message_events_refer_to_their_message()


# Rolling upgrade (§4.2): an instance of the previous version inserts threads without current_branch_id and
# messages without depth. The new version always writes both, so for it the WHEN clauses are false and no
# trigger body runs.
_TRIGGERS_PG = [
    # BEFORE triggers: the row is written once, complete, and the NOT NULL added by step 3 holds for the
    # previous version's rows too. The trunk is inserted before its thread row exists: branches' foreign key
    # is deferred to the commit for that.
    """
    CREATE FUNCTION threadstore_v1_thread() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        NEW.current_branch_id := nextval(pg_get_serial_sequence('branches', 'id'));
        INSERT INTO branches (id, thread_id, parent_branch_id, fork_depth, sibling_index, level)
        VALUES (NEW.current_branch_id, NEW.id, NULL, 0, 1, 0);
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER threads_v1_insert BEFORE INSERT ON threads FOR EACH ROW
        WHEN (NEW.current_branch_id IS NULL) EXECUTE FUNCTION threadstore_v1_thread()
    """,
    # A message of the previous version follows the thread's current leaf: exactly an append without
    # parent_id. Its append has bumped (and so locked) the thread row before this insert, so the leaf read
    # here is the latest. A thread the backfill has not reached (no current_branch_id yet: its trunk may exist,
    # half its seq ranges done) is still a line: the row stays as written, and the backfill chains it by seq.
    """
    CREATE FUNCTION threadstore_v1_message() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE t record;
    BEGIN
        SELECT current_message_id, current_branch_id, current_depth INTO t FROM threads WHERE id = NEW.thread_id;
        IF t.current_branch_id IS NULL THEN
            RETURN NEW;
        END IF;
        NEW.branch_id := t.current_branch_id;
        NEW.depth := t.current_depth + 1;
        NEW.parent_id := t.current_message_id;
        NEW.sibling_index := 1;
        UPDATE threads SET current_message_id = NEW.id, current_depth = t.current_depth + 1 WHERE id = NEW.thread_id;
        RETURN NEW;
    END $$
    """,
    """
    CREATE TRIGGER messages_v1_insert BEFORE INSERT ON messages FOR EACH ROW
        WHEN (NEW.depth IS NULL) EXECUTE FUNCTION threadstore_v1_message()
    """,
]
# SQLite cannot assign NEW: AFTER triggers update the row just written (a second write, for the previous
# version's rows only). Its columns stay nullable, so nothing else depends on it. Inside a trigger,
# last_insert_rowid() is the row the trigger inserted.
_TRIGGERS_SQLITE = [
    """
    CREATE TRIGGER threads_v1_insert AFTER INSERT ON threads WHEN NEW.current_branch_id IS NULL BEGIN
        INSERT INTO branches (thread_id, parent_branch_id, fork_depth, sibling_index, level)
        VALUES (NEW.id, NULL, 0, 1, 0);
        UPDATE threads SET current_branch_id = last_insert_rowid() WHERE id = NEW.id;
    END
    """,
    """
    CREATE TRIGGER messages_v1_insert AFTER INSERT ON messages
    WHEN NEW.depth IS NULL AND (SELECT current_branch_id FROM threads WHERE id = NEW.thread_id) IS NOT NULL BEGIN
        UPDATE messages SET branch_id = (SELECT current_branch_id FROM threads WHERE id = NEW.thread_id),
                            depth = (SELECT current_depth FROM threads WHERE id = NEW.thread_id) + 1,
                            parent_id = (SELECT current_message_id FROM threads WHERE id = NEW.thread_id),
                            sibling_index = 1
        WHERE id = NEW.id;
        UPDATE threads SET current_message_id = NEW.id, current_depth = current_depth + 1 WHERE id = NEW.thread_id;
    END
    """,
]
_DROP_TRIGGERS = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS messages_v1_insert ON messages",
        "DROP TRIGGER IF EXISTS threads_v1_insert ON threads",
        "DROP FUNCTION IF EXISTS threadstore_v1_message()",
        "DROP FUNCTION IF EXISTS threadstore_v1_thread()",
    ],
    "sqlite": ["DROP TRIGGER IF EXISTS messages_v1_insert", "DROP TRIGGER IF EXISTS threads_v1_insert"],
}


def _raw_message_events_refer_to_their_message() -> None:
    """A `message.created` event stored before 0005 is raw JSON with its content inline, which a delete of
    the message (a branch delete) would leave readable. It becomes what the outbox writes now: the object
    without `content`, and `content_of` naming the message, whose content the reader joins (and whose
    absence makes it skip the event). The same object reads back, its content now last; code of 0005 reads
    this form too. The table holds one retention period: a pass in Python, with the JSON rules of both
    databases alike."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, body FROM events WHERE type = 'message.created' AND content_of IS NULL")
    ).all()
    changed = []
    for event_id, body in rows:
        if bytes(body[:1]) != b"\x00":  # written by 0005 or later: content_of is already what it should be
            continue
        data = json.loads(bytes(body[1:]).decode())
        if not isinstance(data, dict) or "content" not in data or not isinstance(data.get("id"), str):
            continue
        del data["content"]
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        changed.append({"id": event_id, "body": b"\x00" + text.encode(), "content_of": data["id"]})
    if changed:
        bind.execute(
            sa.text("UPDATE events SET body = :body, content_of = :content_of WHERE id = :id").bindparams(
                sa.bindparam("body", type_=sa.LargeBinary())
            ),
            changed,
        )


# ------------------------------------------------------------------------------------------------ 2. backfill

# The threads of a batch are locked first, in id order (batches never deadlock with one another, and a v1
# append locks one thread): no append to them commits in between, and each later statement of the batch,
# under READ COMMITTED, sees every message committed before the lock. SQLite: BEGIN IMMEDIATE takes the write
# lock, which does the same for the whole database.
_FIND = "SELECT id, message_count FROM threads WHERE current_branch_id IS NULL AND id > :after ORDER BY id LIMIT :n"
_PG = {
    "begin": "BEGIN",
    "lock": "SELECT id FROM threads WHERE id = ANY(CAST(:ids AS text[])) AND current_branch_id IS NULL"
    " ORDER BY id FOR UPDATE",
    "trunks": """
        INSERT INTO branches (thread_id, parent_branch_id, fork_depth, sibling_index, level)
        SELECT t, NULL, 0, 1, 0 FROM unnest(CAST(:ids AS text[])) AS t
        WHERE NOT EXISTS (SELECT 1 FROM branches b WHERE b.thread_id = t AND b.parent_branch_id IS NULL)
    """,
    # A v1 thread is a line with gapless seqs from 1: seq n is depth n, after seq n - 1.
    "chain": """
        UPDATE messages m SET branch_id = b.id, depth = m.seq, sibling_index = 1,
               parent_id = (SELECT p.id FROM messages p WHERE p.thread_id = m.thread_id AND p.seq = m.seq - 1)
        FROM branches b
        WHERE b.thread_id = ANY(CAST(:ids AS text[])) AND b.parent_branch_id IS NULL AND m.thread_id = b.thread_id
          AND m.depth IS NULL AND m.seq >= :lo AND m.seq <= :hi
    """,
    "current": """
        UPDATE threads t SET current_branch_id = b.id, current_depth = t.message_count,
               current_message_id = (SELECT m.id FROM messages m WHERE m.thread_id = t.id AND m.seq = t.message_count)
        FROM branches b WHERE t.id = ANY(CAST(:ids AS text[])) AND b.thread_id = t.id AND b.parent_branch_id IS NULL
    """,
}
# Correlated subqueries rather than UPDATE … FROM, which SQLite has only since 3.33.
_SQLITE = {
    "begin": "BEGIN IMMEDIATE",
    "lock": "SELECT id FROM threads WHERE id IN :ids AND current_branch_id IS NULL ORDER BY id",
    "trunks": """
        INSERT INTO branches (thread_id, parent_branch_id, fork_depth, sibling_index, level)
        SELECT t.id, NULL, 0, 1, 0 FROM threads t
        WHERE t.id IN :ids
          AND NOT EXISTS (SELECT 1 FROM branches b WHERE b.thread_id = t.id AND b.parent_branch_id IS NULL)
    """,
    "chain": """
        UPDATE messages SET depth = seq, sibling_index = 1,
               branch_id = (SELECT b.id FROM branches b
                            WHERE b.thread_id = messages.thread_id AND b.parent_branch_id IS NULL),
               parent_id = (SELECT p.id FROM messages p
                            WHERE p.thread_id = messages.thread_id AND p.seq = messages.seq - 1)
        WHERE thread_id IN :ids AND depth IS NULL AND seq >= :lo AND seq <= :hi
    """,
    "current": """
        UPDATE threads SET current_depth = message_count,
               current_branch_id = (SELECT b.id FROM branches b
                                    WHERE b.thread_id = threads.id AND b.parent_branch_id IS NULL),
               current_message_id = (SELECT m.id FROM messages m
                                     WHERE m.thread_id = threads.id AND m.seq = threads.message_count)
        WHERE id IN :ids
    """,
}
_LAST_SEQ = 2**31 - 1
_PROGRESS_EVERY_SECONDS = 10.0


class _Progress:
    def __init__(self, threads: int, messages: int) -> None:
        self.threads, self.messages = threads, messages
        self.batches = self.threads_done = self.chained = 0
        self.started = self.logged = time.monotonic()

    def batch(self, threads_done: int, chained: int) -> None:
        self.batches += 1
        self.threads_done += threads_done
        self.chained += chained
        if time.monotonic() - self.logged >= _PROGRESS_EVERY_SECONDS:
            self.logged = time.monotonic()
            self.log("in progress")

    def log(self, state: str) -> None:
        elapsed = time.monotonic() - self.started
        log.info(
            "migration 0006 backfill %s: %d of about %d threads, %d of about %d messages, %d batches, %.1f s",
            state,
            self.threads_done,
            self.threads,
            self.chained,
            self.messages,
            self.batches,
            elapsed,
        )


def _backfill(bind: Connection, postgres: bool, options: Backfill) -> None:
    target = options.batch_messages or (5_000 if postgres else 1_000)
    sql: dict[str, Any] = {name: sa.text(statement) for name, statement in (_PG if postgres else _SQLITE).items()}
    sql["begin"] = (_PG if postgres else _SQLITE)["begin"]  # sent as it is, outside SQLAlchemy's transactions
    if not postgres:
        for name in ("lock", "trunks", "chain", "current"):
            sql[name] = sql[name].bindparams(sa.bindparam("ids", expanding=True))
    left = bind.execute(
        sa.text("SELECT count(*), coalesce(sum(message_count), 0) FROM threads WHERE current_branch_id IS NULL")
    ).one()
    progress = _Progress(int(left[0]), int(left[1]))
    progress.log("starting")
    # Passes until none is left: a pass sees every thread without a tree, and the threads created meanwhile
    # got theirs from the trigger; the second pass only confirms it.
    while _backfill_pass(bind, sql, target, options, progress):
        pass
    progress.log("done")


def _backfill_pass(bind: Connection, sql: dict[str, Any], target: int, options: Backfill, progress: _Progress) -> bool:
    after, found = "", False
    while True:
        rows = [(r[0], int(r[1])) for r in bind.execute(sa.text(_FIND), {"after": after, "n": target})]
        if not rows:
            return found
        found = True
        for ids, ranges in _batches(rows, target):
            for lo, hi in ranges:
                started = time.monotonic()
                last = hi == _LAST_SEQ
                threads_done, chained = _batch(bind, sql, ids, lo, hi, last)
                progress.batch(threads_done, chained)
                if options.on_batch is not None:
                    options.on_batch(progress.batches)
                # SQLite's writers queue behind each batch's write lock: a pause as long as the batch lets
                # them in (§4.3). PostgreSQL's wait only for their own thread's batch.
                pause = options.pause_ms / 1000 if options.pause_ms is not None else None
                if pause is None:
                    pause = 0.0 if bind.dialect.name == "postgresql" else time.monotonic() - started
                if pause > 0:
                    time.sleep(pause)  # the migrator's own connection, between its transactions
            after = ids[-1]


def _batches(rows: Sequence[tuple[str, int]], target: int) -> Iterator[tuple[list[str], list[tuple[int, int]]]]:
    """Threads grouped to about `target` messages (a thread counts one more, for its own row and trunk), each
    group with its seq ranges: one open-ended range, or, for a thread longer than a batch, ranges of `target`
    whose last one, open-ended, also catches what was appended meanwhile and sets the thread's row."""
    batch: list[str] = []
    size = 0
    for thread_id, count in rows:
        if count > target:
            if batch:
                yield batch, [(1, _LAST_SEQ)]
                batch, size = [], 0
            starts = range(1, count + 1, target)
            yield [thread_id], [(lo, lo + target - 1) for lo in starts[:-1]] + [(starts[-1], _LAST_SEQ)]
            continue
        if batch and size + count + 1 > target:
            yield batch, [(1, _LAST_SEQ)]
            batch, size = [], 0
        batch.append(thread_id)
        size += count + 1
    if batch:
        yield batch, [(1, _LAST_SEQ)]


def _batch(bind: Connection, sql: dict[str, Any], ids: list[str], lo: int, hi: int, last: bool) -> tuple[int, int]:
    """One transaction: lock the threads still without a tree, insert their missing trunks, chain the
    messages of seqs lo…hi, and when `last`, set the threads' current leaf. Returns (threads finished,
    messages chained)."""
    with _transaction(bind, sql["begin"]):
        locked = [r[0] for r in bind.execute(sql["lock"], {"ids": ids})]
        if not locked:
            return 0, 0
        bind.execute(sql["trunks"], {"ids": locked})
        chained = bind.execute(sql["chain"], {"ids": locked, "lo": lo, "hi": hi}).rowcount
        if last:
            bind.execute(sql["current"], {"ids": locked})
        return (len(locked) if last else 0), chained


class _transaction:
    """A transaction of its own on the migrator's connection, which Alembic's autocommit block has left
    outside any: BEGIN … COMMIT, or ROLLBACK on an error."""

    def __init__(self, bind: Connection, begin: str = "BEGIN") -> None:
        self.bind, self.begin = bind, begin

    def __enter__(self) -> None:
        self.bind.exec_driver_sql(self.begin)

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        if kind is None:
            self.bind.exec_driver_sql("COMMIT")
            return
        # If the connection is gone, its transaction went with it; the original error says why.
        with contextlib.suppress(sa.exc.DBAPIError):
            self.bind.exec_driver_sql("ROLLBACK")


# ------------------------------------------------------------------------------------------------ 3. finish

_IDEMPOTENCY_MESSAGE_IDS = {
    "postgresql": """
        UPDATE idempotency_keys SET message_id = response_body::jsonb ->> 'id'
        WHERE message_id IS NULL AND status_code = 201 AND response_body::jsonb ->> 'object' = 'message'
    """,
    "sqlite": """
        UPDATE idempotency_keys SET message_id = json_extract(response_body, '$.id')
        WHERE message_id IS NULL AND status_code = 201 AND json_extract(response_body, '$.object') = 'message'
    """,
}


def _fill_idempotency_message_ids(bind: Connection, postgres: bool) -> None:
    """A stored 201 of a keyed append names the message it created, so that a delete of its branch erases it
    (§5). After the backfill, so the keyed appends the previous version stored meanwhile are named too. The
    table holds a day of keys: one statement."""
    with _transaction(bind, "BEGIN" if postgres else "BEGIN IMMEDIATE"):
        bind.execute(sa.text(_IDEMPOTENCY_MESSAGE_IDS[bind.dialect.name]))


_NOT_NULL = {  # PostgreSQL: table → the columns every row now has (SQLite cannot add NOT NULL to a column)
    "messages": ("branch_id", "depth", "sibling_index"),
    "threads": ("current_branch_id",),
}


def _finish(bind: Connection, postgres: bool) -> None:
    if not postgres:
        with _transaction(bind, "BEGIN IMMEDIATE"):  # holds the write lock for the build: 0.2 s per 300,000
            bind.exec_driver_sql(
                "CREATE UNIQUE INDEX IF NOT EXISTS uq_messages_branch_depth ON messages (branch_id, depth)"
            )
        return
    started = time.monotonic()
    if build_index(bind, "uq_messages_branch_depth", "messages (branch_id, depth)", unique=True):
        log.info("migration 0006: uq_messages_branch_depth built in %.1f s", time.monotonic() - started)
    # NOT NULL without holding the table's lock for a scan: a CHECK added NOT VALID (instant), validated (a
    # scan that lets writes go on), then SET NOT NULL, which the valid CHECK proves without a scan, then the
    # CHECK dropped. Each step is idempotent, for a run after an interrupted one.
    for table, columns in _NOT_NULL.items():
        check = f"ck_{table}_0006_not_null"
        exists = bind.execute(
            sa.text("SELECT 1 FROM pg_constraint WHERE conname = :name AND conrelid = CAST(:table AS regclass)"),
            {"name": check, "table": table},
        ).first()
        nullable = bind.execute(
            sa.text(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema()"
                " AND table_name = :table AND column_name IN :columns AND is_nullable = 'YES'"
            ).bindparams(sa.bindparam("columns", expanding=True)),
            {"table": table, "columns": list(columns)},
        ).scalar_one()
        if nullable:
            if exists is None:
                condition = " AND ".join(f"{column} IS NOT NULL" for column in columns)
                _pg_brief_lock(bind, f"ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({condition}) NOT VALID")
            bind.exec_driver_sql(f"ALTER TABLE {table} VALIDATE CONSTRAINT {check}")
            _pg_brief_lock(
                bind, f"ALTER TABLE {table} " + ", ".join(f"ALTER COLUMN {column} SET NOT NULL" for column in columns)
            )
        _pg_brief_lock(bind, f"ALTER TABLE {table} DROP CONSTRAINT IF EXISTS {check}")


def _pg_brief_lock(bind: Connection, statement: str, attempts: int = 30) -> None:
    """A statement that holds the table's ACCESS EXCLUSIVE lock for an instant. Waiting for that lock behind a
    long transaction would queue every query of the app behind it, so it waits 2 s at most and tries again."""
    for attempt in range(1, attempts + 1):
        try:
            with _transaction(bind):
                bind.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
                bind.exec_driver_sql(statement)
            return
        except sa.exc.DBAPIError as error:
            if sqlstate(error) != "55P03" or attempt == attempts:
                raise
            log.warning("migration 0006: %s waited 2 s for its lock; trying again (%d)", statement, attempt)
            time.sleep(1.0)


def downgrade() -> None:
    """Back to 0005's tables. Raw message events keep their 0006 form (no inline content, `content_of`), which
    0005's reader joins as it joins the events it wrote itself."""
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        # Rows inserted earlier in this transaction (an upgrade and downgrade in one run) have deferred
        # foreign-key checks pending, and PostgreSQL drops no table with pending trigger events.
        op.execute("SET CONSTRAINTS ALL IMMEDIATE")
    for statement in _DROP_TRIGGERS[dialect]:
        op.execute(statement)
    op.drop_index("uq_messages_branch_depth", table_name="messages")
    op.drop_table("branches")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("message_id")
    with op.batch_alter_table("messages") as batch:
        for column in ("sibling_index", "parent_id", "depth", "branch_id"):
            batch.drop_column(column)
    with op.batch_alter_table("threads") as batch:
        for column in ("deleted_count", "current_depth", "current_branch_id", "current_message_id"):
            batch.drop_column(column)
