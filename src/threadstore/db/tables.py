"""The schema as SQLAlchemy Core tables. Migrations create it; this module only describes it for queries."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out on every backend.

    SQLite has no time zone type; storing naive UTC keeps its text ordering equal to time ordering.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonDocument = JSON().with_variant(JSONB(), "postgresql")
# Thread ids break ties in list order ("larger id first"): byte order on every server, whatever the
# database's default collation (SQLite compares bytes already).
ThreadId = String(64).with_variant(String(64, collation="C"), "postgresql")

threads = Table(
    "threads",
    metadata,
    Column("id", ThreadId, primary_key=True),
    Column("user_id", String(255), nullable=False),
    Column("title", Text, nullable=True),
    Column("metadata", JsonDocument, nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("archived_at", UtcDateTime, nullable=True),
    Column("message_count", Integer, nullable=False, server_default=text("0")),
    Column("last_message_at", UtcDateTime, nullable=True),
    Column("version", Integer, nullable=False, server_default=text("1")),
    CheckConstraint("status IN ('active', 'archived')", name="status"),
    # One index per list query shape so every page is a single index range scan.
    Index("ix_threads_user_status_updated", "user_id", "status", text("updated_at DESC"), text("id DESC")),
    Index("ix_threads_user_updated", "user_id", text("updated_at DESC"), text("id DESC")),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("thread_id", ThreadId, ForeignKey("threads.id", ondelete="CASCADE"), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("role", String(16), nullable=False),
    Column("content", Text, nullable=False),
    Column("metadata", JsonDocument, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    CheckConstraint("role IN ('user', 'assistant', 'system', 'tool')", name="role"),
    # The unique (thread_id, seq) index is both the gapless-seq guard and the index that pages messages.
    UniqueConstraint("thread_id", "seq", name="uq_messages_thread_seq"),
)

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("user_id", String(255), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("response_body", Text, nullable=False),
    Column("response_headers", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # The thread whose content the response holds; its permanent delete erases the response. Found through the
    # primary key's user_id prefix, with no index of its own (migration 0004 says why).
    Column("thread_id", ThreadId, nullable=True),
    Index("ix_idempotency_keys_created_at", "created_at"),
)

# The outbox: each write records its events here, in its own transaction (delivered after commit).
# `id` is taken at insert and is not commit order; `position` is handed out after commit by the publisher
# (events/publisher.py) and is the id clients see: published positions always form a gapless prefix.
events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("user_id", String(255), nullable=False),
    Column("type", String(32), nullable=False),
    Column("data", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("position", BigInteger, nullable=True),
    Index("uq_events_position", "position", unique=True),
    Index("ix_events_user_position", "user_id", "position"),
    # Only unpublished rows: the publisher's scan stays as small as the backlog.
    Index(
        "ix_events_unpublished",
        "id",
        postgresql_where=text("position IS NULL"),
        sqlite_where=text("position IS NULL"),
    ),
    # Never reuse an id, even after pruning empties the table: event ids must grow strictly.
    sqlite_autoincrement=True,
)


def storable(*values: str) -> bool:
    """False when a value holds NUL: PostgreSQL text cannot, so no row matches it, and binding it is an error."""
    return all("\x00" not in value for value in values)
