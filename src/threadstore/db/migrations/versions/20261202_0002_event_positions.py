"""event positions: the order in which committed events are delivered

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02

`events.id` comes from the insert, so a later id can commit before an earlier one. `position` is handed
out only to committed events, by one publisher at a time (threadstore/events/publisher.py), so the
published positions are always a gapless prefix and "resume after position X" is exact. Rows that exist
when this runs are all committed: they take their id as position.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("position", sa.BigInteger(), nullable=True))
    op.execute("UPDATE events SET position = id")
    op.create_index("uq_events_position", "events", ["position"], unique=True)
    op.create_index("ix_events_user_position", "events", ["user_id", "position"])
    op.create_index(
        "ix_events_unpublished",
        "events",
        ["id"],
        postgresql_where=sa.text("position IS NULL"),
        sqlite_where=sa.text("position IS NULL"),
    )
    # Catch-up reads (user_id, position) and pruning walks position: these two only cost writes now.
    op.drop_index("ix_events_user_id", table_name="events")
    op.drop_index("ix_events_created_at", table_name="events")


def downgrade() -> None:
    op.create_index("ix_events_created_at", "events", ["created_at"])
    op.create_index("ix_events_user_id", "events", ["user_id", "id"])
    op.drop_index("ix_events_unpublished", table_name="events")
    op.drop_index("ix_events_user_position", table_name="events")
    op.drop_index("uq_events_position", table_name="events")
    with op.batch_alter_table("events") as batch:
        batch.drop_column("position")
