"""branches: a thread's messages form a tree, stored as branch segments

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

Every thread gets a trunk branch, and every v1 thread becomes a chain on it: message seq n has depth n, its
parent is message n - 1, and the thread's current message is its last. Design and measurements:
docs/branches-design.md; the layout: db/tables.py.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BRANCH_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_THREAD_ID = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
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
    _chain_v1_threads()
    op.create_index("uq_messages_branch_depth", "messages", ["branch_id", "depth"], unique=True)


def _chain_v1_threads() -> None:
    """Every thread a trunk; every message its place on it (a v1 thread is a line: seq n is depth n)."""
    op.execute(
        "INSERT INTO branches (thread_id, parent_branch_id, fork_depth, sibling_index, level)"
        " SELECT id, NULL, 0, 1, 0 FROM threads WHERE current_branch_id IS NULL"
    )
    op.execute(
        "UPDATE threads SET current_branch_id = (SELECT b.id FROM branches b WHERE b.thread_id = threads.id),"
        " current_depth = message_count,"
        " current_message_id = (SELECT m.id FROM messages m WHERE m.thread_id = threads.id"
        " AND m.seq = threads.message_count)"
        " WHERE current_branch_id IS NULL"
    )
    op.execute(
        "UPDATE messages SET depth = seq, sibling_index = 1,"
        " branch_id = (SELECT t.current_branch_id FROM threads t WHERE t.id = messages.thread_id),"
        " parent_id = (SELECT p.id FROM messages p WHERE p.thread_id = messages.thread_id AND p.seq = messages.seq - 1)"
        " WHERE depth IS NULL"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        # Rows inserted earlier in this transaction (an upgrade and downgrade in one run) have deferred
        # foreign-key checks pending, and PostgreSQL drops no table with pending trigger events.
        op.execute("SET CONSTRAINTS ALL IMMEDIATE")
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
