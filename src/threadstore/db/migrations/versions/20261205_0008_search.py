"""full-text search over titles and messages

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

Messages and threads gain `search_terms`, written by the statement that writes their text (db/search_terms.py).
PostgreSQL: a `tsvector` column on each; messages' under a GIN index built CONCURRENTLY, a title's copied by a
trigger into `thread_search`, under its own GIN index. SQLite: a text column on each, a
`search_docs` table (one row per indexed text: a message, or a title with `message_id` NULL) and an external-
content FTS5 table over it, kept in step by triggers, so every write of the column — an append, a fork's copy,
a title change, a foreign key's cascade — changes the index in its own transaction.

The new columns start NULL (not indexed). `threadstore migrate` then fills them in batches, online
(search/reindex.py, `pending` pass); rows written meanwhile by an instance of the previous version stay NULL
until `threadstore reindex` runs again.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.engine import Connection

from threadstore.db.migrations.concurrently import build_index

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Messages' pending list (fastupdate) takes an append's entries cheaply, merged later in bulk; titles change
# seldom, and a pending list, which every search reads whole and the planner prices, is not worth it there.
_GIN = {
    "ix_messages_search": "messages USING gin (search_terms)",
    "ix_thread_search": "thread_search USING gin (search_terms) WITH (fastupdate = off)",
}

# PostgreSQL: a thread's title terms are indexed in a row of their own, kept by a trigger from the thread's
# column. In the thread's row, every append's update (never HOT: updated_at is indexed) would insert the
# title's terms into the GIN index again — more WAL per append, and a pending list every search reads
# (docs/performance.md, "Search"). The trigger writes only when the title's terms change.
_POSTGRES = (
    """CREATE TABLE thread_search (
        thread_id VARCHAR(64) PRIMARY KEY REFERENCES threads (id) ON DELETE CASCADE,
        search_terms tsvector NOT NULL)""",
    """CREATE FUNCTION thread_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.search_terms IS NULL THEN
            DELETE FROM thread_search WHERE thread_id = NEW.id;
        ELSE
            INSERT INTO thread_search (thread_id, search_terms) VALUES (NEW.id, NEW.search_terms)
            ON CONFLICT (thread_id) DO UPDATE SET search_terms = EXCLUDED.search_terms;
        END IF;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER threads_search_ai AFTER INSERT ON threads FOR EACH ROW
        WHEN (NEW.search_terms IS NOT NULL) EXECUTE FUNCTION thread_search_sync()""",
    """CREATE TRIGGER threads_search_au AFTER UPDATE OF search_terms ON threads FOR EACH ROW
        WHEN (OLD.search_terms IS DISTINCT FROM NEW.search_terms) EXECUTE FUNCTION thread_search_sync()""",
)
_POSTGRES_DROP = (
    "DROP TRIGGER threads_search_au ON threads",
    "DROP TRIGGER threads_search_ai ON threads",
    "DROP FUNCTION thread_search_sync()",
    "DROP TABLE thread_search",
)

# SQLite. search_docs.id is an INTEGER PRIMARY KEY: a rowid VACUUM keeps, which the FTS table refers to.
_SQLITE = (
    """CREATE TABLE search_docs (
        id INTEGER PRIMARY KEY,
        thread_id VARCHAR(64) NOT NULL REFERENCES threads (id) ON DELETE CASCADE,
        message_id VARCHAR(64) REFERENCES messages (id) ON DELETE CASCADE,
        owner TEXT NOT NULL,
        terms TEXT NOT NULL)""",
    "CREATE UNIQUE INDEX uq_search_docs_message ON search_docs (message_id)",
    "CREATE INDEX ix_search_docs_thread ON search_docs (thread_id)",
    # `ascii`: splits at the spaces the terms are written with, keeps every non-ASCII character as it is (the
    # folding is done, for both databases alike, by search/text.py).
    "CREATE VIRTUAL TABLE search_fts USING fts5(owner, terms, content='search_docs', content_rowid='id',"
    " tokenize='ascii')",
    """CREATE TRIGGER search_docs_ai AFTER INSERT ON search_docs BEGIN
        INSERT INTO search_fts (rowid, owner, terms) VALUES (new.id, new.owner, new.terms);
    END""",
    """CREATE TRIGGER search_docs_ad AFTER DELETE ON search_docs BEGIN
        INSERT INTO search_fts (search_fts, rowid, owner, terms) VALUES ('delete', old.id, old.owner, old.terms);
    END""",
    # An owner is the user id in hexadecimal: one FTS term of letters and digits.
    """CREATE TRIGGER messages_search_ai AFTER INSERT ON messages WHEN new.search_terms <> '' BEGIN
        INSERT INTO search_docs (thread_id, message_id, owner, terms)
        SELECT new.thread_id, new.id, 'u' || lower(hex(t.user_id)), new.search_terms FROM threads t
        WHERE t.id = new.thread_id;
    END""",
    """CREATE TRIGGER messages_search_au AFTER UPDATE OF search_terms ON messages
    WHEN new.search_terms IS NOT old.search_terms BEGIN
        DELETE FROM search_docs WHERE message_id = old.id;
        INSERT INTO search_docs (thread_id, message_id, owner, terms)
        SELECT new.thread_id, new.id, 'u' || lower(hex(t.user_id)), new.search_terms FROM threads t
        WHERE t.id = new.thread_id AND new.search_terms <> '';
    END""",
    """CREATE TRIGGER threads_search_ai AFTER INSERT ON threads WHEN new.search_terms <> '' BEGIN
        INSERT INTO search_docs (thread_id, message_id, owner, terms)
        VALUES (new.id, NULL, 'u' || lower(hex(new.user_id)), new.search_terms);
    END""",
    """CREATE TRIGGER threads_search_au AFTER UPDATE OF search_terms ON threads
    WHEN new.search_terms IS NOT old.search_terms BEGIN
        DELETE FROM search_docs WHERE thread_id = old.id AND message_id IS NULL;
        INSERT INTO search_docs (thread_id, message_id, owner, terms)
        SELECT new.id, NULL, 'u' || lower(hex(new.user_id)), new.search_terms WHERE new.search_terms <> '';
    END""",
)
_SQLITE_DROP = (
    "DROP TRIGGER threads_search_au",
    "DROP TRIGGER threads_search_ai",
    "DROP TRIGGER messages_search_au",
    "DROP TRIGGER messages_search_ai",
    "DROP TABLE search_fts",
    "DROP TABLE search_docs",
)


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    if postgres:
        op.execute("SET LOCAL lock_timeout = '5s'")  # as in 0007: give up rather than stall the service
        for table in ("messages", "threads"):
            op.execute(f"ALTER TABLE {table} ADD COLUMN search_terms tsvector")
        for statement in _POSTGRES:
            op.execute(statement)
    else:
        for table in ("messages", "threads"):
            op.add_column(table, sa.Column("search_terms", sa.Text(), nullable=True))
        for statement in _SQLITE:
            op.execute(statement)
    if postgres:
        with op.get_context().autocommit_block():
            _gin_indexes(op.get_bind())


def _gin_indexes(bind: Connection) -> None:
    for name, target in _GIN.items():
        build_index(bind, name, target)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_messages_search")
        for statement in _POSTGRES_DROP:
            op.execute(statement)
    else:
        for statement in _SQLITE_DROP:
            op.execute(statement)
    for table in ("messages", "threads"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("search_terms")
