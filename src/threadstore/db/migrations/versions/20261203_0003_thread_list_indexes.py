"""thread list indexes: one partial index per status, so each thread is in one list index, not two

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03

Every change to a thread moves `updated_at`, so no change is a HOT update and each one writes an entry
into every index of `threads`. The two list indexes of 0001, (user_id, status, updated_at, id) and
(user_id, updated_at, id), held every thread twice. `(user_id, updated_at DESC, id DESC) WHERE status =
'active'` and the same `WHERE status = 'archived'` hold it once, and serve every list query: one status
as a range scan of its index, status=all as a merge of both (threads/repository.py).

For an operator of a large table: this runs in one transaction. Each plain CREATE INDEX reads the whole
table and blocks every write to `threads` (create, append, PATCH, archive, delete; reads go on) until the
migration commits, for about as long as building the two indexes takes. The DROP INDEXes come last, so
their brief exclusive lock, which also stops reads, is held only for the end of the transaction. To keep
writes going instead, build the new indexes beforehand, outside a transaction, while the old version
still serves:

    CREATE INDEX CONCURRENTLY ix_threads_user_updated_active ON threads
        (user_id, updated_at DESC, id DESC) WHERE status = 'active';
    CREATE INDEX CONCURRENTLY ix_threads_user_updated_archived ON threads
        (user_id, updated_at DESC, id DESC) WHERE status = 'archived';

This migration then keeps them (IF NOT EXISTS) and only drops the old two. A CONCURRENTLY build that failed
leaves an invalid index of that name (`pg_index.indisvalid` false), which IF NOT EXISTS would keep too:
drop it and build it again first.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LIST_KEYS: list[str | sa.TextClause] = ["user_id", sa.text("updated_at DESC"), sa.text("id DESC")]


def upgrade() -> None:
    for status in ("active", "archived"):
        predicate = sa.text(f"status = '{status}'")
        op.create_index(
            f"ix_threads_user_updated_{status}",
            "threads",
            LIST_KEYS,
            postgresql_where=predicate,
            sqlite_where=predicate,
            if_not_exists=True,
        )
    op.drop_index("ix_threads_user_status_updated", table_name="threads")
    op.drop_index("ix_threads_user_updated", table_name="threads")


def downgrade() -> None:
    op.create_index(
        "ix_threads_user_status_updated",
        "threads",
        ["user_id", "status", sa.text("updated_at DESC"), sa.text("id DESC")],
    )
    op.create_index("ix_threads_user_updated", "threads", LIST_KEYS)
    op.drop_index("ix_threads_user_updated_archived", table_name="threads")
    op.drop_index("ix_threads_user_updated_active", table_name="threads")
