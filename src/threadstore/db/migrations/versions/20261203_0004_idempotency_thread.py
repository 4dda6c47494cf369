"""idempotency thread: each stored response names the thread whose content it holds

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03

A permanent delete turns the stored responses of the user's keys for that thread into 404 (API.md, version 2:
nothing deleted can be read back by a replay). `thread_id` is how it finds them.

No index of its own. The delete looks the keys up by `user_id = ? AND thread_id = ?`: a range scan of the
primary key (user_id, key) on the user's prefix, then a filter. Keys live 24 hours, so that range is one
user's keyed writes of a day (plus what the next pruning pass removes), and a permanent delete, which is rare,
reads it once; an index would add a btree entry (and its WAL) to every keyed write, the hot path, to save that.
Add one on (thread_id) if single users come to make hundreds of thousands of keyed writes a day.

Records stored before this revision get their thread from the stored body (a thread's `id`, a message's
`thread_id`), and those whose thread is already gone (deleted for good before the upgrade) are erased as the
delete now erases them, so the guarantee also covers what was deleted before it existed.

Downgrade drops the column. Erased records stay as they are (status 404, empty body, no headers): code before
this revision replays them as such, so nothing deleted comes back.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from threadstore.db.tables import ThreadId

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# Every response stored before this revision is a 201 with a thread or a message as its JSON body.
_BACKFILL = {
    "postgresql": """
        UPDATE idempotency_keys SET thread_id = CASE response_body::jsonb ->> 'object'
            WHEN 'thread' THEN response_body::jsonb ->> 'id'
            WHEN 'message' THEN response_body::jsonb ->> 'thread_id' END
        WHERE status_code = 201
    """,
    "sqlite": """
        UPDATE idempotency_keys SET thread_id = CASE json_extract(response_body, '$.object')
            WHEN 'thread' THEN json_extract(response_body, '$.id')
            WHEN 'message' THEN json_extract(response_body, '$.thread_id') END
        WHERE status_code = 201
    """,
}
# What idempotency/service.py `forget_thread` writes, as of this revision.
_ERASE_ORPHANS = """
    UPDATE idempotency_keys SET status_code = 404, response_body = '', response_headers = '{}'
    WHERE thread_id IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM threads
        WHERE threads.id = idempotency_keys.thread_id AND threads.user_id = idempotency_keys.user_id
    )
"""


def upgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.add_column(sa.Column("thread_id", ThreadId, nullable=True))
    op.execute(_BACKFILL[op.get_bind().dialect.name])
    op.execute(_ERASE_ORPHANS)


def downgrade() -> None:
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("thread_id")
