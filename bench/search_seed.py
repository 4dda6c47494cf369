"""Seeds the search bench's corpus (search_corpus.py) into PostgreSQL and SQLite at once.

Worker processes build the chunks (text, the app's terms for each row); the main process hands each chunk to
two sink threads: PostgreSQL by `COPY … (FORMAT csv)` (the tsvector literal as text: asyncpg's binary COPY has
no tsvector encoder), with the GIN indexes dropped during the load and built again after; SQLite by one
transaction of INSERTs per chunk, whose triggers (migration 0008) fill `search_docs` and the FTS5 table as the
app's own writes do. Both databases were migrated by `threadstore migrate` before.
"""

from __future__ import annotations

import asyncio
import csv
import io
import multiprocessing
import queue
import random
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import asyncpg
import branching
import search_corpus as corpus
import seeding
from search_corpus import Chunk, Shape, Stats

from threadstore.db.search_terms import IndexedTerms, tsvector_literal
from threadstore.search.index import indexed

GIN = {  # migration 0008's
    "ix_messages_search": "messages USING gin (search_terms)",
    "ix_thread_search": "thread_search USING gin (search_terms) WITH (fastupdate = off)",
}
MAINTENANCE_WORK_MEM = "1GB"  # for the index builds of the seeding connection only


@dataclass
class Seeded:
    shape: Shape
    stats: Stats
    seconds: float = 0.0  # the whole seeding
    load_seconds: float = 0.0  # chunks built and loaded into both databases
    postgres: dict[str, float] = field(default_factory=dict)  # step -> seconds after the load
    sqlite: dict[str, float] = field(default_factory=dict)
    pg_sizes: dict[str, int] = field(default_factory=dict)  # relation -> bytes
    sqlite_bytes: int = 0
    sqlite_rows: int = 0
    fork_messages: int = 0  # the fork target's, PostgreSQL only


class _PostgresSink:
    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.queue: queue.Queue[Chunk | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.busy = 0.0
        self.thread = threading.Thread(target=self._run, name="pg-sink", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._consume())
        except BaseException as error:  # reported by the main thread
            self.error = error
            while self.queue.get() is not None:  # let the producer finish
                pass

    async def _consume(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        try:
            while (chunk := self.queue.get()) is not None:
                t0 = time.monotonic()
                for table, columns, text in (
                    ("threads", corpus.THREAD_COLUMNS, chunk.threads_csv),
                    ("branches", corpus.BRANCH_COLUMNS, chunk.branches_csv),
                    ("messages", corpus.MESSAGE_COLUMNS, chunk.messages_csv),
                ):
                    source = io.BytesIO(text.encode())
                    await conn.copy_to_table(table, source=source, columns=list(columns), format="csv")
                self.busy += time.monotonic() - t0
        finally:
            await conn.close()


_SQLITE_THREADS = f"INSERT INTO threads ({', '.join(corpus.THREAD_COLUMNS)}) VALUES ({', '.join('?' * 14)})"
_SQLITE_BRANCHES = f"INSERT INTO branches ({', '.join(corpus.BRANCH_COLUMNS)}) VALUES ({', '.join('?' * 6)})"
_SQLITE_MESSAGES = f"INSERT INTO messages ({', '.join(corpus.MESSAGE_COLUMNS)}) VALUES ({', '.join('?' * 12)})"


class _SqliteSink:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.queue: queue.Queue[Chunk | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None
        self.busy = 0.0
        self.rows = 0
        self.thread = threading.Thread(target=self._run, name="sqlite-sink", daemon=True)

    def _run(self) -> None:
        try:
            self._consume()
        except BaseException as error:
            self.error = error
            while self.queue.get() is not None:
                pass

    def _consume(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            # A bulk load: no fsync, a large page cache. The app's connections set their own pragmas.
            for pragma in ("journal_mode=WAL", "synchronous=OFF", "cache_size=-1000000", "temp_store=MEMORY"):
                db.execute(f"PRAGMA {pragma}")
            while (chunk := self.queue.get()) is not None:
                t0 = time.monotonic()
                db.execute("BEGIN")
                db.executemany(_SQLITE_THREADS, chunk.sqlite_threads)
                db.executemany(_SQLITE_BRANCHES, chunk.sqlite_branches)
                db.executemany(_SQLITE_MESSAGES, chunk.sqlite_messages)
                db.execute("COMMIT")
                self.rows += len(chunk.sqlite_messages)
                self.busy += time.monotonic() - t0
        finally:
            db.close()


# ---------------------------------------------------------------- the fork target (PostgreSQL only)

FORK_CHUNK = 20_000
_TREES: dict[int, branching.Tree] = {}


def fork_tree(first_branch: int) -> branching.Tree:
    """branching's `deep` thread (100,999 messages, a 100,000-message active path in 1,000 segments), owned by
    branching.OWNER, its branches numbered from `first_branch`: the fork rows of issue 16 on this database."""
    if first_branch not in _TREES:
        tree = branching.deep_tree(branching.DEEP_THREAD)
        tree.renumber(list(range(first_branch, first_branch + len(tree.branches))))
        _TREES[first_branch] = tree
    return _TREES[first_branch]


def fork_messages_csv(args: tuple[int, int, int]) -> str:
    """The rows of messages [start, end) of the fork tree, with corpus text and the app's terms."""
    first_branch, start, end = args
    tree = fork_tree(first_branch)
    rng = random.Random(f"{corpus.SEED}-fork-{start}")
    text = io.StringIO()
    out = csv.writer(text)
    for m in tree.messages[start:end]:
        role = "user" if m.depth % 2 else "assistant"
        content, split = corpus.message_text(rng, role, [], False)
        terms = IndexedTerms(branching.OWNER, split)
        stamp = corpus.T0 + timedelta(seconds=m.seq)
        out.writerow((m.id, tree.thread_id, m.seq, role, content, "{}", stamp.isoformat(), m.branch_id, m.depth,
                      m.parent_id, m.sibling_index, tsvector_literal(terms)))  # fmt: skip
    return text.getvalue()


async def _fork_rows(dsn: str, tree: branching.Tree, messages_csv: list[str]) -> None:
    assert tree.current is not None
    last = tree.messages[-1]
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            title = "fork target"
            terms = indexed(branching.OWNER, title)
            assert terms is not None
            await seeding.copy_csv(
                conn,
                "threads",
                corpus.THREAD_COLUMNS,
                [(tree.thread_id, branching.OWNER, title, "{}", "active", corpus.T0.isoformat(),
                  (corpus.T0 + timedelta(seconds=last.seq)).isoformat(), len(tree.messages),
                  (corpus.T0 + timedelta(seconds=last.seq)).isoformat(), len(tree.messages) + 1,
                  tree.current.id, tree.current.branch_id, tree.current.depth, tsvector_literal(terms))],
            )  # fmt: skip
            await seeding.copy_csv(
                conn,
                "branches",
                ("id", "thread_id", "parent_branch_id", "fork_depth", "sibling_index", "level", "jump_id",
                 "jump_level", "jump_fork_depth"),
                [(b.id, tree.thread_id, b.parent_branch_id, b.fork_depth, b.sibling_index, b.level, b.jump_id,
                  b.jump_level, b.jump_fork_depth) for b in tree.branches],
            )  # fmt: skip
            for text in messages_csv:
                await conn.copy_to_table(
                    "messages", source=io.BytesIO(text.encode()), columns=list(corpus.MESSAGE_COLUMNS), format="csv"
                )
    finally:
        await conn.close()


async def _drop_gin(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for name in GIN:
            await conn.execute(f"DROP INDEX {name}")
    finally:
        await conn.close()


async def _after_postgres(dsn: str, seeded: Seeded, log: Callable[[str], None]) -> None:
    """The GIN indexes built again as migration 0008 defines them, the branch sequence moved past the seeded
    ids, VACUUM ANALYZE; each step timed."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"SET maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
        for name, target in GIN.items():
            t0 = time.monotonic()
            await conn.execute(f"CREATE INDEX {name} ON {target}")
            seeded.postgres[f"CREATE INDEX {name}"] = time.monotonic() - t0
            log(f"search seed: PostgreSQL {name} built in {seeded.postgres[f'CREATE INDEX {name}']:.0f} s")
        await conn.execute("SELECT setval(pg_get_serial_sequence('branches', 'id'), (SELECT max(id) FROM branches))")
        t0 = time.monotonic()
        for table in ("threads", "branches", "messages"):
            await conn.execute(f"VACUUM ANALYZE {table}")
        seeded.postgres["VACUUM ANALYZE"] = time.monotonic() - t0
        for relation in ("messages", "threads", "thread_search", "ix_messages_search", "ix_thread_search"):
            seeded.pg_sizes[relation] = int(
                await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", relation)
            )
    finally:
        await conn.close()


def _after_sqlite(path: Path, seeded: Seeded) -> None:
    db = sqlite3.connect(path, isolation_level=None)
    try:
        t0 = time.monotonic()
        db.execute("ANALYZE")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        seeded.sqlite["ANALYZE, checkpoint"] = time.monotonic() - t0
    finally:
        db.close()
    seeded.sqlite_bytes = path.stat().st_size


def seed(shape: Shape, pg_dsn: str, sqlite_path: Path | None, *, workers: int, log: Callable[[str], None]) -> Seeded:
    """`sqlite_path`: a file migrated by `threadstore migrate`, or None for PostgreSQL alone."""
    started = time.monotonic()
    seeded = Seeded(shape, Stats())
    asyncio.run(_drop_gin(pg_dsn))
    sinks: list[_PostgresSink | _SqliteSink] = [_PostgresSink(pg_dsn)]
    if sqlite_path is not None:
        sinks.append(_SqliteSink(sqlite_path))
    for sink in sinks:
        sink.thread.start()
    tasks = [(shape, n, start, end) for n, (start, end) in enumerate(corpus.chunks(shape))]
    corpus.heavy_plan(shape)  # once, before the fork: the workers inherit these
    corpus.sentence_pools()
    first_branch = shape.total_threads + 1  # the corpus's threads have trunks 1 … total_threads
    tree = fork_tree(first_branch)
    n = len(tree.messages)
    fork_tasks = [(first_branch, a, min(a + FORK_CHUNK, n)) for a in range(0, n, FORK_CHUNK)]
    done = 0
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            fork_csv = pool.map_async(fork_messages_csv, fork_tasks)
            for chunk in pool.imap(corpus.build_chunk, tasks):
                for sink in sinks:
                    if sink.error is None:
                        sink.queue.put(chunk)
                seeded.stats.add(chunk.stats)
                done += chunk.messages
                if chunk.number % 10 == 9:
                    log(f"search seed: {done:,} of {shape.total_messages:,} messages built and handed to the databases")
            asyncio.run(_fork_rows(pg_dsn, tree, fork_csv.get()))
            seeded.fork_messages = len(tree.messages)
    finally:
        for sink in sinks:
            sink.queue.put(None)
        for sink in sinks:
            sink.thread.join()
    for sink in sinks:
        if sink.error is not None:
            raise RuntimeError(f"{sink.thread.name} failed: {sink.error!r}") from sink.error
    seeded.load_seconds = time.monotonic() - started
    busy = ", ".join(f"{s.thread.name} busy {s.busy:.0f} s" for s in sinks)
    log(f"search seed: {done:,} messages loaded in {seeded.load_seconds:.0f} s ({busy})")
    asyncio.run(_after_postgres(pg_dsn, seeded, log))
    if sqlite_path is not None:
        _after_sqlite(sqlite_path, seeded)
        seeded.sqlite_rows = sum(s.rows for s in sinks if isinstance(s, _SqliteSink))
    seeded.seconds = time.monotonic() - started
    return seeded
