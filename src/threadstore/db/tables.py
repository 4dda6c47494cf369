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
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    literal_column,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

from threadstore.db.search_terms import SearchTerms

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
# A document that may be absent: Python None is SQL NULL, not the JSON value null.
OptionalJson = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
# Thread ids break ties in list order ("larger id first"): byte order on every server, whatever the
# database's default collation (SQLite compares bytes already).
ThreadId = String(64).with_variant(String(64, collation="C"), "postgresql")
BranchId = BigInteger().with_variant(Integer, "sqlite")

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
    # The active path's leaf (NULL: no message), with its branch and depth, so an append without parent_id
    # reads its position from the row it locks (docs/architecture.md, "Branches").
    Column("current_message_id", String(64), nullable=True),
    # NOT NULL on PostgreSQL (nullable on SQLite, which cannot add NOT NULL to a column: migration 0006).
    Column("current_branch_id", BranchId, nullable=False),
    Column("current_depth", Integer, nullable=False, server_default=text("0")),
    # `message_count` stays the seq counter (messages ever created: seqs are never reused); the API's
    # message_count is message_count - deleted_count.
    Column("deleted_count", Integer, nullable=False, server_default=text("0")),
    # The title's search terms (db/search_terms.py); NULL without a title.
    Column("search_terms", SearchTerms, nullable=True),
    CheckConstraint("status IN ('active', 'archived')", name="status"),
)

# The rows search has yet to index (migration 0009): what `threadstore migrate`'s pending pass reads at every
# start, from an index that holds only them — empty once everything is indexed — instead of the whole table.
# search/repository.py's pending batches say these predicates as written here, so the indexes serve them.
UNINDEXED_THREAD = "search_terms IS NULL AND title IS NOT NULL"
UNINDEXED_MESSAGE = "search_terms IS NULL AND status <> 'in_progress'"
Index(
    "ix_threads_unindexed", threads.c.id, postgresql_where=text(UNINDEXED_THREAD), sqlite_where=text(UNINDEXED_THREAD)
)

THREAD_STATUSES = ("active", "archived")
# `status = 'active'` with the status as a literal, never a bind parameter: PostgreSQL uses a partial index
# only for a query whose predicate proves the index's, which a parameter cannot in a generic plan.
HAS_STATUS = {status: threads.c.status == literal_column(f"'{status}'") for status in THREAD_STATUSES}
# The list order, one partial index per status: a row is in exactly one of them. Every change to a thread
# moves updated_at, so none is a HOT update and each writes an entry into every index of the table; with
# these two that is the primary key and one list index. Each status's pages are a range scan of its index;
# status=all merges the two scans (threads/repository.py).
for _status in THREAD_STATUSES:
    Index(
        f"ix_threads_user_updated_{_status}",
        threads.c.user_id,
        text("updated_at DESC"),
        text("id DESC"),
        postgresql_where=HAS_STATUS[_status],
        sqlite_where=HAS_STATUS[_status],
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
    # Its place in the thread's tree: `depth` on branch `branch_id` (a run of messages continuing one another).
    # `parent_id` is kept for the API and never indexed: paths are found through `branches`. The other three are
    # NOT NULL on PostgreSQL (nullable on SQLite, which cannot add NOT NULL to a column: migration 0006).
    Column("branch_id", BranchId, nullable=False),
    Column("depth", Integer, nullable=False),
    Column("parent_id", String(64), nullable=True),
    Column("sibling_index", Integer, nullable=False),
    # A streamed reply (API v2): `in_progress` while the model writes it, through deltas (`message_deltas`).
    Column("status", String(16), nullable=False, server_default=text("'completed'")),
    Column("finish_reason", String(64), nullable=True),
    Column("model", String(128), nullable=True),
    Column("input_tokens", Integer, nullable=True),
    Column("output_tokens", Integer, nullable=True),
    # Content as an array of parts, as stored; `content` then holds the text of its text parts, which
    # auto-rename and search read (messages/parts.py).
    Column("parts", OptionalJson, nullable=True),
    # Characters of the content, deltas included: a delta's offset is checked against it without reading the
    # text. NULL on rows written before 0007 (their length is that of `content`).
    Column("content_length", Integer, nullable=True),
    # The last delta or PATCH of an in_progress message; the stale sweep ends those idle too long.
    Column("active_at", UtcDateTime, nullable=True),
    Column("feedback_rating", String(8), nullable=True),
    Column("feedback_comment", Text, nullable=True),
    Column("feedback_at", UtcDateTime, nullable=True),
    # The terms search finds the message by (db/search_terms.py), written with its text; NULL while it is
    # in_progress (indexed when it ends) and on rows not yet indexed after migration 0008.
    Column("search_terms", SearchTerms, nullable=True),
    CheckConstraint("role IN ('user', 'assistant', 'system', 'tool')", name="role"),
    CheckConstraint("status IN ('completed', 'in_progress', 'incomplete')", name="status"),
    # The unique (thread_id, seq) index is both the gapless-seq guard and the index that pages `view=all`.
    UniqueConstraint("thread_id", "seq", name="uq_messages_thread_seq"),
    # Pages of a path: one range per branch segment; also the guard that a message has one continuation.
    # A named index, not a constraint, so SQLite statements can say INDEXED BY it.
    Index("uq_messages_branch_depth", "branch_id", "depth", unique=True),
    # PostgreSQL: fillfactor 90 (migration 0007), so a delta's update of its reply's row stays on its page.
    # The stale sweep's scan: only unfinished messages are in it. Keyed by id, not active_at, so a delta (which
    # moves active_at and content_length, no indexed column) can be a HOT update that writes no index entry.
    Index(
        "ix_messages_in_progress",
        "id",
        postgresql_where=text("status = 'in_progress'"),
        sqlite_where=text("status = 'in_progress'"),
    ),
    Index(
        "ix_messages_unindexed", "id", postgresql_where=text(UNINDEXED_MESSAGE), sqlite_where=text(UNINDEXED_MESSAGE)
    ),
)

# The text a streamed reply's deltas appended, one row per delta at its starting offset (in characters): a
# delta writes its own size whatever the length already stored. The message's end (a closing PATCH, the stale
# sweep) folds them into `messages.content` once and deletes them.
message_deltas = Table(
    "message_deltas",
    metadata,
    Column("message_id", String(64), ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True),
    Column("start", Integer, primary_key=True),
    Column("text", Text, nullable=False),
)

# A thread's messages form a tree stored as branches: runs of messages each of which is the parent of the next.
# A branch starts after depth `fork_depth` of its parent branch (the trunk, created with the thread, has none:
# roots are its children at depth 0). `level` and the jump columns are a skew-binary jump pointer over the
# branch tree, so the segment of a path holding any depth is found in O(log branches) rows. Design and
# measurements: docs/branches-design.md.
branches = Table(
    "branches",
    metadata,
    Column("id", BranchId, primary_key=True, autoincrement=True),
    # Deferred: a thread's first write may insert its trunk before its row (migration 0006 says when).
    Column(
        "thread_id",
        ThreadId,
        ForeignKey("threads.id", ondelete="CASCADE", deferrable=True, initially="DEFERRED"),
        nullable=False,
    ),
    Column("parent_branch_id", BranchId, nullable=True),
    Column("fork_depth", Integer, nullable=False),
    Column("sibling_index", Integer, nullable=False),
    Column("level", Integer, nullable=False),
    Column("jump_id", BranchId, nullable=True),
    Column("jump_level", Integer, nullable=True),
    Column("jump_fork_depth", Integer, nullable=True),
    Index("ix_branches_thread", "thread_id", "parent_branch_id"),
    Index("ix_branches_forks", "parent_branch_id", "fork_depth", "sibling_index"),
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
    # The message a keyed append created: a delete of its branch erases the response too.
    Column("message_id", String(64), nullable=True),
    Index("ix_idempotency_keys_created_at", "created_at"),
)

# The outbox: each write records its event here, in its own transaction, with one insert and no later
# update. An event's id is taken at insert (`threadstore_next_event_id()` on PostgreSQL, so the writer has its
# transaction id first) and is its delivery position; events/publisher.py decides how far ids are delivered.
# `body` is the object as the API returned it, compact (db/outbox.py): `member` is the one `"key":value` the
# write's own statement supplied, `content_of` the message whose (immutable) content completes it, `message_id`
# the message whose text the body holds inline.
events = Table(
    "events",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("user_id", String(255), nullable=False),
    Column("thread_id", ThreadId, nullable=False),
    Column("type", String(32), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("member", Text, nullable=True),
    Column("content_of", String(64), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    # The message whose text the body carries itself (a delta, the snapshot of an unfinished message): the
    # event is erased with the message, as one whose `content_of` is gone.
    Column("message_id", String(64), nullable=True),
    # A stream's catch-up, and a permanent delete's erasure of the user's kept events.
    Index("ix_events_user_id", "user_id", "id"),
    # A one-thread stream's catch-up (`GET /api/events?thread_id=`), and a thread's erasure.
    Index("ix_events_thread_id", "thread_id", "id"),
    # Never reuse an id, even after pruning empties the table: event ids must grow strictly.
    sqlite_autoincrement=True,
)

# How far events are delivered (events/publisher.py): every event id <= `published_through` is delivered
# by id, except the ids in event_gaps (undecided when the publisher passed them) and those delivered later
# under a new position (event_late). `pruned_through`: events up to here may be gone, a resume below is 409.
event_state = Table(
    "event_state",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("published_through", BigInteger, nullable=False),
    Column("pruned_through", BigInteger, nullable=False),
    CheckConstraint("id = 1", name="single_row"),
)

# Ids the publisher passed while their transaction could still commit. `horizon`: the first transaction id
# not yet assigned when it was seen; once every older transaction has ended, an id still invisible never
# will be (PostgreSQL only: SQLite's writers never overlap).
event_gaps = Table(
    "event_gaps",
    metadata,
    Column("event_id", BigInteger, primary_key=True),
    Column("horizon", BigInteger, nullable=False),
)

# An event whose id was passed before it committed is delivered once, later, under a position taken then.
event_late = Table(
    "event_late",
    metadata,
    Column("position", BigInteger, primary_key=True),
    Column("event_id", BigInteger, nullable=False),
    UniqueConstraint("event_id", name="uq_event_late_event_id"),
)


def storable(*values: str) -> bool:
    """False when a value holds NUL: PostgreSQL text cannot, so no row matches it, and binding it is an error."""
    return all("\x00" not in value for value in values)


# A new message's columns that its writer gives as they are: beside its identity and text, the reply and search
# columns of version 2. Every statement that inserts a new message (an append in either form, a new thread's
# first messages) names these: one list, so a column added here reaches all of them.
MESSAGE_REPLY_COLUMNS = (
    "status",
    "finish_reason",
    "model",
    "input_tokens",
    "output_tokens",
    "parts",
    "content_length",
    "active_at",
    "search_terms",
)
MESSAGE_GIVEN = ("id", "thread_id", "role", "content", "metadata", "created_at", *MESSAGE_REPLY_COLUMNS)

# What migration 0008 makes outside this metadata, for search (db/search_terms.py): PostgreSQL's GIN index of
# messages (SQLAlchemy would make a B-tree on SQLite) and its titles' table with a trigger, and SQLite's index
# table with its FTS5 table and shadow tables.
SEARCH_INDEXES = {"postgresql": {"ix_messages_search"}, "sqlite": set[str]()}
SEARCH_TABLES = {
    "postgresql": {"thread_search"},
    "sqlite": {
        "search_docs",
        "search_fts",
        "search_fts_config",
        "search_fts_data",
        "search_fts_docsize",
        "search_fts_idx",
    },
}
