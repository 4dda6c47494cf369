"""indexes of the rows search has not indexed yet

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06

`threadstore migrate` (and so `serve`, which migrates first) runs search's pending pass at every start: it
looks for finished messages and titled threads without search terms. Without an index of those it read every
row of both tables at each start, to find none. These partial indexes hold only such rows — none once the index
is complete — so the pass costs what is pending. Built CONCURRENTLY on PostgreSQL: writes go on meanwhile.
"""

from __future__ import annotations

from alembic import op
from sqlalchemy.engine import Connection

from threadstore.db.migrations.concurrently import build_index

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The predicates are those of search/repository.py's pending batches, word for word: a partial index serves
# only a query whose WHERE clause implies them.
_INDEXES = {
    "ix_messages_unindexed": "messages (id) WHERE search_terms IS NULL AND status <> 'in_progress'",
    "ix_threads_unindexed": "threads (id) WHERE search_terms IS NULL AND title IS NOT NULL",
}


def upgrade() -> None:
    with op.get_context().autocommit_block():
        _build(op.get_bind())


def _build(bind: Connection) -> None:
    for name, target in _INDEXES.items():
        if bind.dialect.name == "postgresql":
            build_index(bind, name, target)
        else:
            bind.exec_driver_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {target}")


def downgrade() -> None:
    op.drop_index("ix_threads_unindexed", table_name="threads")
    op.drop_index("ix_messages_unindexed", table_name="messages")
