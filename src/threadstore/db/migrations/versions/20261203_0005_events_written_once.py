"""events written once: the id is the delivery position, the object is stored compact

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03

Before, an event row was inserted by its write and updated by the publisher with its `position` (a second
WAL record, a dead tuple and three index entries per event). Now the id taken at insert is the position and
the publisher records only its decisions (event_state, event_gaps, event_late: events/publisher.py).

Kept events keep the id clients saw: a published event's new id is its old position, so every Last-Event-ID
given out before stays exact. Events not yet published take the next ids, in insert order. Their JSON text
becomes a raw body (db/event_body.py), read back as it was. The table is small (events are kept a day) and is
rewritten in the migration's transaction.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# The writer has its transaction id before it takes the event's id: the publisher relies on it to tell an id
# whose transaction ended (events/publisher.py).
_NEXT_EVENT_ID = """
CREATE FUNCTION threadstore_next_event_id() RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_current_xact_id();
    RETURN nextval('events_id_seq');
END
$$
"""


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.drop_index("ix_events_unpublished", table_name="events")
    op.drop_index("ix_events_user_position", table_name="events")
    op.drop_index("uq_events_position", table_name="events")
    op.rename_table("events", "events_v1")
    if postgres:
        op.execute("ALTER TABLE events_v1 RENAME CONSTRAINT pk_events TO pk_events_v1")
        op.execute("ALTER SEQUENCE events_id_seq RENAME TO events_v1_id_seq")
    op.create_table(
        "events",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False, autoincrement=not postgres
        ),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("thread_id", sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql"), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("member", sa.Text(), nullable=True),
        sa.Column("content_of", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "event_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("published_through", sa.BigInteger(), nullable=False),
        sa.Column("pruned_through", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_event_state_single_row"),
        sa.PrimaryKeyConstraint("id", name="pk_event_state"),
    )
    op.create_table(
        "event_gaps",
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.Column("horizon", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_event_gaps"),
    )
    op.create_table(
        "event_late",
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("position", name="pk_event_late"),
        sa.UniqueConstraint("event_id", name="uq_event_late_event_id"),
    )
    if postgres:
        _copy_postgres()
    else:
        _copy_sqlite()
    op.drop_table("events_v1")
    op.create_index("ix_events_user_id", "events", ["user_id", "id"])


def _copy_postgres() -> None:
    op.execute("CREATE SEQUENCE events_id_seq OWNED BY events.id")
    op.execute(_NEXT_EVENT_ID)
    op.execute("ALTER TABLE events ALTER COLUMN id SET DEFAULT threadstore_next_event_id()")
    op.execute(
        """
        INSERT INTO events (id, user_id, thread_id, type, body, created_at)
        SELECT coalesce(position, top.p + row_number() OVER (PARTITION BY position IS NULL ORDER BY id)),
               user_id,
               coalesce(data::jsonb ->> CASE WHEN type LIKE 'thread.%' THEN 'id' ELSE 'thread_id' END, ''),
               type, '\\x00'::bytea || convert_to(data, 'UTF8'), created_at
        FROM events_v1, (SELECT coalesce(max(position), 0) AS p FROM events_v1) AS top
        """
    )
    op.execute("SELECT setval('events_id_seq', coalesce(max(id), 0) + 1, false) FROM events")
    op.execute(
        "INSERT INTO event_state (id, published_through, pruned_through)"
        " SELECT 1, coalesce(max(id), 0), coalesce(min(id) - 1, 0) FROM events"
    )


def _copy_sqlite() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT id, user_id, type, data, created_at, position FROM events_v1 ORDER BY id")
    ).all()
    top = max((r.position for r in rows if r.position is not None), default=0)
    copied = []
    for row in rows:
        if row.position is None:
            top += 1
        data = json.loads(row.data)
        thread_id = data.get("id" if row.type.startswith("thread.") else "thread_id") or ""
        copied.append(
            {
                "id": row.position if row.position is not None else top,
                "user_id": row.user_id,
                "thread_id": thread_id,
                "type": row.type,
                "body": b"\x00" + row.data.encode(),
                "created_at": row.created_at,
            }
        )
    if copied:
        bind.execute(
            sa.text(
                "INSERT INTO events (id, user_id, thread_id, type, body, created_at)"
                " VALUES (:id, :user_id, :thread_id, :type, :body, :created_at)"
            ),
            copied,
        )
    bind.execute(
        sa.text(
            "INSERT INTO event_state (id, published_through, pruned_through)"
            " SELECT 1, coalesce(max(id), 0), coalesce(min(id) - 1, 0) FROM events"
        )
    )


def downgrade() -> None:
    """Back to positioned events: each delivered event keeps its position as id and position; events not
    yet delivered become unpublished rows (position NULL), which the old publisher then numbers."""
    from threadstore.db import event_body  # the one decoder of stored bodies

    postgres = op.get_bind().dialect.name == "postgresql"
    bind = op.get_bind()
    state = bind.execute(sa.text("SELECT published_through FROM event_state")).one()
    rows = bind.execute(
        sa.text(
            "SELECT e.id, coalesce(l.position, e.id) AS position, e.user_id, e.type, e.body, e.member,"
            " m.content, e.content_of, e.created_at, g.event_id AS undecided"
            " FROM events e LEFT JOIN event_late l ON l.event_id = e.id"
            " LEFT JOIN messages m ON m.id = e.content_of LEFT JOIN event_gaps g ON g.event_id = e.id"
            " ORDER BY coalesce(l.position, e.id)"
        )
    ).all()
    op.drop_index("ix_events_user_id", table_name="events")
    op.drop_table("event_late")
    op.drop_table("event_gaps")
    op.drop_table("event_state")
    op.drop_table("events")
    if postgres:
        op.execute("DROP FUNCTION threadstore_next_event_id()")
    op.create_table(
        "events",
        sa.Column("id", _ID, nullable=False, autoincrement=True),
        sa.Column("user_id", sa.String(255), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_events"),
        sqlite_autoincrement=True,
    )
    copied = [
        {
            "id": row.position,
            "user_id": row.user_id,
            "type": row.type,
            "data": event_body.decode(row.body, row.member, row.content),
            "created_at": row.created_at,
            "position": row.position if row.position <= state.published_through and not row.undecided else None,
        }
        for row in rows
        if row.content_of is None or row.content is not None
    ]
    if copied:
        op.bulk_insert(sa.table("events", *(sa.column(k) for k in copied[0])), copied)
    if postgres:
        op.execute("SELECT setval('events_id_seq', coalesce(max(id), 0) + 1, false) FROM events")
    op.create_index("uq_events_position", "events", ["position"], unique=True)
    op.create_index("ix_events_user_position", "events", ["user_id", "position"])
    op.create_index(
        "ix_events_unpublished",
        "events",
        ["id"],
        postgresql_where=sa.text("position IS NULL"),
        sqlite_where=sa.text("position IS NULL"),
    )
