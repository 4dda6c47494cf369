"""streamed replies, structured content and feedback

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

Messages gain their status (a reply stored while the model streams it), its end (finish_reason, model, token
usage), content as parts, feedback, and the deltas table; events gain the message whose text they hold
inline, and an index per thread for one-thread streams. Layout: db/tables.py.

Every new column is nullable or has a constant default, so on PostgreSQL each ALTER only changes the catalog
(an instant under the table's lock, waited for at most 5 s); the status CHECK is added NOT VALID and validated
by a scan that lets writes go on; the two indexes are built CONCURRENTLY. An instance of the previous version
keeps working meanwhile: it never writes the new columns, and the defaults make its messages `completed`.
The rolling-upgrade triggers of 0006 stay until a later migration, once no 0005-era instance can run.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

from threadstore.db.migrations.concurrently import build_index

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(sa.dialects.postgresql.JSONB(), "postgresql")
_TIME = sa.DateTime(timezone=True)
_STATUS_CHECK = "status IN ('completed', 'in_progress', 'incomplete')"
_INDEXES = {
    "ix_messages_in_progress": "messages (id) WHERE status = 'in_progress'",
    "ix_events_thread_id": "events (thread_id, id)",
}


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        # An ALTER waits for the table's lock, and every query of the app queues behind it meanwhile: give up
        # (the migration fails, to be run again) rather than stall the service behind a long transaction.
        op.execute("SET LOCAL lock_timeout = '5s'")
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("status", sa.String(16), nullable=False, server_default=sa.text("'completed'")))
        batch.add_column(sa.Column("finish_reason", sa.String(64), nullable=True))
        batch.add_column(sa.Column("model", sa.String(128), nullable=True))
        batch.add_column(sa.Column("input_tokens", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("output_tokens", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("parts", _JSON, nullable=True))
        batch.add_column(sa.Column("content_length", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("active_at", _TIME, nullable=True))
        batch.add_column(sa.Column("feedback_rating", sa.String(8), nullable=True))
        batch.add_column(sa.Column("feedback_comment", sa.Text(), nullable=True))
        batch.add_column(sa.Column("feedback_at", _TIME, nullable=True))
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("message_id", sa.String(64), nullable=True))
    if postgres:
        op.execute(f"ALTER TABLE messages ADD CONSTRAINT ck_messages_status CHECK ({_STATUS_CHECK}) NOT VALID")
        # Room on each new page for the next versions of its rows: a delta updates its reply's row (length and
        # activity time, no indexed column), which stays on its page — a HOT update, no index entry — only if
        # the page has room. Full pages (appends fill them) moved the row on every delta: 9.4 KB of WAL per
        # delta, 10 times the ~0.9 KB of a HOT one (docs/performance.md, "Streamed replies"). Pages written
        # from now on; existing ones keep their fill.
        op.execute("ALTER TABLE messages SET (fillfactor = 90)")
    op.create_table(
        "message_deltas",
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("start", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", "start", name="pk_message_deltas"),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name="fk_message_deltas_message_id_messages", ondelete="CASCADE"
        ),
    )
    with op.get_context().autocommit_block():
        _finish(op.get_bind(), postgres)


def _finish(bind: Connection, postgres: bool) -> None:
    if not postgres:
        for name, target in _INDEXES.items():
            bind.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")
        return
    bind.exec_driver_sql("ALTER TABLE messages VALIDATE CONSTRAINT ck_messages_status")
    for name, target in _INDEXES.items():
        build_index(bind, name, target)


def downgrade() -> None:
    for name, table in (("ix_events_thread_id", "events"), ("ix_messages_in_progress", "messages")):
        op.drop_index(name, table_name=table)
    op.drop_table("message_deltas")
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE messages DROP CONSTRAINT ck_messages_status")
        op.execute("ALTER TABLE messages RESET (fillfactor)")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("message_id")
    with op.batch_alter_table("messages") as batch:
        for column in (
            "feedback_at",
            "feedback_comment",
            "feedback_rating",
            "active_at",
            "content_length",
            "parts",
            "input_tokens",
            "output_tokens",
            "model",
            "finish_reason",
            "status",
        ):
            batch.drop_column(column)
