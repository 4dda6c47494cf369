"""Every list query is one index range scan on PostgreSQL (status=all: a merge of two), with no sort and no
sequential scan, at any depth, in the plan made for the values and in the generic plan alike.

The plans are taken from the repositories' own statements, on enough rows that the planner prefers a
sequential scan plus sort when no suitable index exists. Every user has hundreds of threads in each status
(of a few dozen, reading them all and sorting them is the planner's cheaper choice, and a cheap one).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy.dialects import postgresql

from tests.conftest import execute_sql, fresh_database
from tests.pg_server import PgServer
from threadstore.idempotency import repository as idempotency_repo
from threadstore.messages import repository as messages_repo
from threadstore.messages import tree_sql
from threadstore.threads import repository as threads_repo

SEED = """
-- Each thread names its trunk (inserted below), as version 2 writes it: without it migration 0006's
-- rolling-upgrade trigger would give it one, as it does for the previous version's inserts.
INSERT INTO threads (id, user_id, title, metadata, status, created_at, updated_at, message_count, version,
                     current_branch_id)
SELECT 'thr_' || lpad(n::text, 8, '0'), 'user_' || (n % 100), 'Thread ' || n, '{}',
       CASE WHEN n % 3 = 0 THEN 'archived' ELSE 'active' END,
       now() - n * interval '1 second', now() - n * interval '1 second', 0, 1, 1000 + n
FROM generate_series(1, 40000) n;
INSERT INTO threads (id, user_id, title, metadata, status, created_at, updated_at, message_count, version,
                     current_message_id, current_branch_id, current_depth)
VALUES ('big', 'user_big', 'big', '{}', 'active', now(), now(), 51000, 1, 'msg_50000', 1, 50000);
-- 'big': a 50,000-message path on its trunk (branch 1), and 200 abandoned edits along it, 5 messages each: most
-- rows in one branch, the statistics that once made SQLite and PostgreSQL plan paths badly (docs/branches-design.md)
INSERT INTO branches (id, thread_id, parent_branch_id, fork_depth, sibling_index, level)
VALUES (1, 'big', NULL, 0, 1, 0);
INSERT INTO branches (id, thread_id, parent_branch_id, fork_depth, sibling_index, level, jump_id, jump_level,
                      jump_fork_depth)
SELECT 1 + i, 'big', 1, 250 * i, 2, 1, 1, 0, 0 FROM generate_series(1, 200) i;
INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at, branch_id, depth, parent_id,
                      sibling_index)
SELECT 'msg_' || k, 'big', k, 'user', 'hello', '{}', now(), 1, k, CASE WHEN k > 1 THEN 'msg_' || (k - 1) END, 1
FROM generate_series(1, 50000) k;
INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at, branch_id, depth, parent_id,
                      sibling_index)
SELECT 'msg_f' || i || '_' || j, 'big', 50000 + 5 * (i - 1) + j, 'assistant', 'edit', '{}', now(), 1 + i,
       250 * i + j, CASE WHEN j = 1 THEN 'msg_' || (250 * i) ELSE 'msg_f' || i || '_' || (j - 1) END,
       CASE WHEN j = 1 THEN 2 ELSE 1 END
FROM generate_series(1, 200) i, generate_series(1, 5) j;
-- every other thread's trunk: branches is a table of many threads, as in production
INSERT INTO branches (id, thread_id, parent_branch_id, fork_depth, sibling_index, level)
SELECT 1000 + n, 'thr_' || lpad(n::text, 8, '0'), NULL, 0, 1, 0 FROM generate_series(1, 40000) n;
SELECT setval(pg_get_serial_sequence('branches', 'id'), 100000);
INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body, response_headers, created_at,
                              thread_id)
SELECT 'user_' || (n % 200), 'key_' || n, md5(n::text) || md5(n::text), 201, '{}', '{}', now(),
       'thr_' || lpad((n % 40000)::text, 8, '0')
FROM generate_series(1, 40000) n;
ANALYZE threads; ANALYZE messages; ANALYZE branches; ANALYZE idempotency_keys;
"""


@pytest.fixture(scope="module")
async def seeded(pg_server: PgServer | None, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with fresh_database("postgresql", pg_server, tmp_path_factory.mktemp("plans")) as backend:
        assert backend.dsn is not None
        await execute_sql(backend.dsn, SEED)
        yield backend.dsn


def _sql_literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        value = value.isoformat()
    elif isinstance(value, dict):
        value = json.dumps(value)
    return "'" + str(value).replace("'", "''") + "'"


async def _plan(dsn: str, statement: Any, params: dict[str, Any], mode: str) -> str:
    """The plan of `statement` as a prepared statement (asyncpg prepares every statement) with `params`.

    mode "custom": planned for these values, as for a prepared statement's first five executions; "generic":
    the plan PostgreSQL may keep from the sixth execution on, made without looking at any value."""
    compiled = statement.compile(dialect=postgresql.asyncpg.dialect())
    names = list(dict.fromkeys(compiled.positiontup))  # $n in order of first use, each once
    params = {**compiled.params, **params}  # with the values the statement itself binds (e.g. `> 0`)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"SET plan_cache_mode = force_{mode}_plan")
        await conn.execute(f"PREPARE page AS {compiled}")
        rows = await conn.fetch(f"EXPLAIN EXECUTE page({', '.join(_sql_literal(params[n]) for n in names)})")
    finally:
        await conn.close()
    return "\n".join(r[0] for r in rows)


def _assert_no_sort_no_seq_scan(plan: str) -> None:
    assert "Seq Scan" not in plan, plan
    assert "Sort" not in plan.replace("Sort Key", ""), plan  # Merge Append names its sort key: no Sort step
    assert "Bitmap" not in plan, plan


def _assert_single_range_scan(plan: str, *indexes: str) -> None:
    _assert_no_sort_no_seq_scan(plan)
    assert plan.count("Index Scan") == 1 or "Nested Loop" in plan, plan
    assert any(
        f"Index Scan using {index} " in plan or f"Index Scan Backward using {index} " in plan for index in indexes
    ), plan


MODES = ["custom", "generic"]
# Halfway through user_7's threads, so the planner expects many rows on either side of the cursor.
CURSOR = (datetime.now(UTC) - timedelta(seconds=20_000), "thr_00020007")
# (title filter, metadata filters): none, `q`, `q` and two `metadata.<key>=<value>`.
FILTERS = [(False, 0), (True, 0), (True, 2)]


def _list_params(after: bool, title: bool, metadata_filters: int) -> dict[str, Any]:
    params: dict[str, Any] = {"p_user": "user_7", "p_limit": 21}
    if after:
        params["p_after_ts"], params["p_after_id"] = CURSOR
    if title:
        params["p_q"] = "thread"
    for i in range(metadata_filters):
        params[f"p_m{i}"] = {f"k{i}": "v"}
    return params


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("title", "metadata_filters"), FILTERS)
@pytest.mark.parametrize("after", [False, True])
@pytest.mark.parametrize("status", ["active", "archived"])
async def test_a_status_page_is_one_range_scan_of_that_status_index(
    seeded: str, status: str, after: bool, title: bool, metadata_filters: int, mode: str
) -> None:
    statement = threads_repo._list_statement("postgresql", status, after, title, metadata_filters)
    plan = await _plan(seeded, statement, _list_params(after, title, metadata_filters), mode)
    # The status is a literal in the statement, so even the generic plan proves the partial index's predicate.
    _assert_single_range_scan(plan, f"ix_threads_user_updated_{status}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("title", "metadata_filters"), FILTERS)
@pytest.mark.parametrize("after", [False, True])
async def test_an_all_statuses_page_merges_the_range_scans_of_both_status_indexes(
    seeded: str, after: bool, title: bool, metadata_filters: int, mode: str
) -> None:
    statement = threads_repo._list_statement("postgresql", "all", after, title, metadata_filters)
    plan = await _plan(seeded, statement, _list_params(after, title, metadata_filters), mode)
    _assert_no_sort_no_seq_scan(plan)
    assert "Merge Append" in plan, plan
    assert plan.count("Index Scan") == 2, plan
    assert "Index Scan using ix_threads_user_updated_active " in plan, plan
    assert "Index Scan using ix_threads_user_updated_archived " in plan, plan


def _assert_index_probes_only(plan: str) -> None:
    """Every row is reached through an index: no sequential or bitmap scan of any table. (A Sort of the page's
    own few rows, or of a CTE's, is fine.)"""
    assert "Seq Scan" not in plan, plan
    # An unfinished reply's deltas are read by their primary key's message_id prefix; on a small table the
    # planner may do that as a bitmap scan of that index, which still reads only that message's rows.
    bitmaps = [line for line in plan.splitlines() if "Bitmap" in line]
    assert all("message_deltas" in line or "pk_message_deltas" in line for line in bitmaps), plan


# Pages of a path (db/tables.py, branch segments): first, middle and last page of the 50,000-message path, each
# way, through the text statements of messages/tree_sql.py; their probes are written as LATERAL … LIMIT so that
# the plan cannot be a hash join over a whole table whatever the statistics say.
PATH_PAGES = {
    "asc-first": ("asc", {"sb": None, "leaf_depth": None, "after": 0}),
    "asc-middle": ("asc", {"sb": 1, "leaf_depth": None, "after": 25_000}),
    "asc-last": ("asc", {"sb": 1, "leaf_depth": None, "after": 49_950}),
    "desc-first": ("desc", {"sb": None, "before": None}),
    "desc-middle": ("desc", {"sb": 1, "before": 25_000}),
    "desc-last": ("desc", {"sb": 1, "before": 51}),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("page", list(PATH_PAGES))
async def test_path_pages_are_index_probes_at_any_depth(seeded: str, page: str, mode: str) -> None:
    order, params = PATH_PAGES[page]
    statement = messages_repo._PATH_PAGES[(order, "postgresql")]
    plan = await _plan(seeded, statement, {"thread": "big", "user": "user_big", "lim": 50, **params}, mode)
    _assert_index_probes_only(plan)
    assert "uq_messages_branch_depth" in plan, plan


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("after", [False, True])
async def test_view_all_pages_are_index_range_scans_by_seq(seeded: str, after: bool, mode: str) -> None:
    statement = messages_repo._SEQ_PAGES[("asc", int(after), "postgresql")]
    params: dict[str, Any] = {"thread": "big", "user": "user_big", "lim": 51} | ({"after": 49_950} if after else {})
    plan = await _plan(seeded, statement, params, mode)
    _assert_index_probes_only(plan)
    assert "uq_messages_thread_seq" in plan, plan


@pytest.mark.parametrize("mode", MODES)
async def test_siblings_descent_and_child_placement_are_index_probes(seeded: str, mode: str) -> None:
    siblings = messages_repo._SIBLING_PAGES[("asc", "postgresql")]
    params = {"mid": "msg_251", "thread": "big", "user": "user_big", "lim": 51, "after": 0}
    _assert_index_probes_only(await _plan(seeded, siblings, params, mode))
    descent = messages_repo._DESCENT["postgresql"]
    _assert_index_probes_only(await _plan(seeded, descent, {"start_branch": 1, "start_depth": 1}, mode))
    place = messages_repo._CHILD_PLACE["message"]
    _assert_index_probes_only(await _plan(seeded, place, {"thread": "big", "parent": "msg_100"}, mode))


@pytest.mark.parametrize("mode", MODES)
async def test_single_thread_read_is_a_primary_key_lookup(seeded: str, mode: str) -> None:
    plan = await _plan(seeded, threads_repo._SELECT, {"p_id": "thr_00000007", "p_user": "user_7"}, mode)
    _assert_single_range_scan(plan, "pk_threads")


async def test_erasing_a_threads_keys_reads_only_the_users_primary_key_range(seeded: str) -> None:
    """A permanent delete finds its thread's keys within the user's prefix of the primary key: no index of its
    own, never a scan of the whole table (migration 0004)."""
    params = {
        "p_user": "user_7",
        "p_thread": "thr_00000007",
        "p_status": 404,
        "response_body": "",
        "response_headers": "{}",
    }
    for mode in ("custom", "generic"):
        plan = await _plan(seeded, idempotency_repo._ERASE, params, mode)
        assert "Seq Scan" not in plan, plan
        assert "pk_idempotency_keys" in plan, plan


# SQLite: the same shapes, on a database analyzed while one branch holds most messages. With those statistics
# SQLite once drove a page from `messages` or built an automatic index per query (1 s a page); the statements
# pin their join order (CROSS JOIN) and indexes (INDEXED BY) against that (docs/branches-design.md, §2.5).
SQLITE_SEED = """
WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 20000)
INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at, branch_id, depth, parent_id,
                      sibling_index)
SELECT 'msg_' || k, 'big', k, 'user', 'hello', '{}', '2026-12-04 00:00:00', 1, k,
       CASE WHEN k > 1 THEN 'msg_' || (k - 1) END, 1 FROM n;
INSERT INTO threads (id, user_id, title, metadata, status, created_at, updated_at, message_count, version,
                     current_message_id, current_branch_id, current_depth, deleted_count)
VALUES ('big', 'user_big', 'big', '{}', 'active', '2026-12-04 00:00:00', '2026-12-04 00:00:00', 20000, 1,
        'msg_20000', 1, 20000, 0);
INSERT INTO branches (id, thread_id, parent_branch_id, fork_depth, sibling_index, level)
VALUES (1, 'big', NULL, 0, 1, 0);
WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 100)
INSERT INTO branches (id, thread_id, parent_branch_id, fork_depth, sibling_index, level, jump_id, jump_level,
                      jump_fork_depth)
SELECT 1 + k, 'big', 1, 100 * k, 2, 1, 1, 0, 0 FROM n;
ANALYZE;
"""


async def test_sqlite_path_pages_never_scan_messages_or_build_an_index(tmp_path: Any) -> None:
    import sqlite3

    async with fresh_database("sqlite", None, tmp_path) as backend:
        path = backend.url.removeprefix("sqlite+aiosqlite:///")
        conn = sqlite3.connect(path)
        try:
            conn.executescript("PRAGMA foreign_keys=OFF;" + SQLITE_SEED)
            for order, params in PATH_PAGES.values():
                sql = tree_sql.for_dialect(tree_sql.path_page(order, "sqlite"), "sqlite")
                values = {
                    "thread": "big",
                    "user": "user_big",
                    "lim": 50,
                    "sb": None,
                    "leaf_depth": None,
                    "after": 0,
                    "before": None,
                } | params
                plan = "\n".join(str(row[-1]) for row in conn.execute("EXPLAIN QUERY PLAN " + sql, values))
                # An automatic index over the page's own fork counts (a CTE of a few rows) is fine; over a table
                # it is an index built per query.
                automatic = [line for line in plan.splitlines() if "AUTOMATIC" in line]
                assert all(line.startswith("SEARCH fk ") for line in automatic), plan
                assert "SCAN m\n" not in plan + "\n" and "SCAN messages" not in plan, plan
                assert "uq_messages_branch_depth" in plan, plan
        finally:
            conn.close()


# Search (issue 18): the words are found through the GIN indexes of messages and threads, never by reading the
# tables. 20,000 other messages of 200 users and 2,000 of one user hold the word; each holds its owner's term.
async def _search_seed(dsn: str) -> None:
    from threadstore.db.search_terms import owner_term

    conn = await asyncpg.connect(dsn)
    try:
        owners = [owner_term(f"suser_{i}") for i in range(200)]
        await conn.execute(
            "INSERT INTO threads (id, user_id, title, metadata, status, created_at, updated_at, message_count,"
            " version, current_branch_id, search_terms)"
            " SELECT 'thr_s' || n, 'suser_' || (n % 200), 'Search ' || n, '{}', 'active', now(), now(), 0, 1,"
            " 500000 + n, CAST('''' || ($1::text[])[n % 200 + 1] || ''' ''search'':1' AS tsvector)"
            " FROM generate_series(1, 2000) n",
            owners,
        )
        await conn.execute(
            "INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at, branch_id, depth,"
            " sibling_index, search_terms)"
            " SELECT 'msg_s' || k, 'thr_s' || (k % 2000 + 1), k / 2000 + 1, 'user', 'common rare' || k, '{}', now(),"
            " 500000 + k % 2000 + 1, k / 2000 + 1, 1,"
            " CAST('''' || ($1::text[])[(k % 2000 + 1) % 200 + 1] || ''' ''common'':1 ''rare' || k || ''':2'"
            " AS tsvector) FROM generate_series(0, 21999) k",
            owners,
        )
        # The other 40,000 threads get titled too (the trigger of migration 0008 copies them to thread_search).
        await conn.execute(
            "UPDATE threads SET search_terms = CAST($1 AS tsvector) WHERE id LIKE 'thr_0%'",
            "'#0000000000000000' 'thread':1",
        )
        # VACUUM: the GIN indexes' pending lists merged, as autovacuum keeps them in production (a long one
        # makes the planner price the index above a scan of a small table).
        for table in ("threads", "messages", "thread_search"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()


@pytest.mark.parametrize("q", ["rare77", "common", "common rare7", '"common rare7"', "rar", "common -rare7"])
async def test_search_finds_words_through_the_gin_indexes(seeded: str, q: str) -> None:
    """Every value written in (the tsqueries are, by literal_execute: search/repository.py `_inline`; the user
    and the limit as well here), so this is the plan of each search, for its words."""
    from threadstore.search import repository as search_repo
    from threadstore.search.text import parse

    conn = await asyncpg.connect(seeded)  # seeded once for the module's database
    try:
        if not await conn.fetchval("SELECT count(*) FROM threads WHERE id = 'thr_s1'"):
            await _search_seed(seeded)
        query = parse(q)
        params = search_repo._params("postgresql", "suser_7", query) | {"s_user": "suser_7", "p_limit": 21}
        statement = search_repo._statement("postgresql", "active", False, False, bool(query.excluded), 0)
        compiled = statement.params(**params).compile(
            dialect=postgresql.asyncpg.dialect(), compile_kwargs={"render_postcompile": True}
        )
        sql = str(compiled)
        for n, name in reversed(list(enumerate(compiled.positiontup or [], start=1))):  # $12 before $1
            sql = sql.replace(f"${n}", _sql_literal(params[name]))
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}"))
    finally:
        await conn.close()
    assert plan.count("Bitmap Index Scan on ix_messages_search") >= 1, plan
    assert plan.count("Bitmap Index Scan on ix_thread_search") >= 1, plan
    assert "Seq Scan on messages" not in plan and "Seq Scan on threads" not in plan, plan
    # Never a parameter: a generic plan, made without the words, scanned every message (the planner cannot
    # estimate an unknown tsquery).
    assert "POSTCOMPILE_s_owned" in str(statement.compile(dialect=postgresql.asyncpg.dialect()))


# The pending pass of `threadstore migrate` (search/reindex.py) at every start: only the rows without terms are
# read, through the partial indexes of migration 0009, however many are indexed already.
_UNINDEXED_SEED = {
    "postgresql": """
SET session_replication_role = replica;  -- no foreign keys or triggers: rows, not a consistent thread
INSERT INTO threads (id, user_id, title, metadata, status, created_at, updated_at, message_count, version,
                     current_branch_id, search_terms)
SELECT 'thr_' || lpad(n::text, 6, '0'), 'u', 'Title ' || n, '{}', 'active', now(), now(), 0, 1, n,
       CASE WHEN n % 10000 = 0 THEN NULL ELSE ''::tsvector END
FROM generate_series(1, 30000) n;
INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at, branch_id, depth, sibling_index,
                      search_terms)
SELECT 'msg_' || lpad(k::text, 6, '0'), 'thr_000001', k, 'user', 'hello', '{}', now(), 1, k, 1,
       CASE WHEN k % 10000 = 0 THEN NULL ELSE ''::tsvector END
FROM generate_series(1, 30000) k;
ANALYZE threads; ANALYZE messages;
""",
    "sqlite": """
WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 30000)
INSERT INTO threads (id, user_id, title, metadata, status, created_at, updated_at, message_count, version,
                     current_branch_id, search_terms)
SELECT 'thr_' || printf('%06d', k), 'u', 'Title ' || k, '{}', 'active', '2026-12-06', '2026-12-06', 0, 1, k,
       CASE WHEN k % 10000 = 0 THEN NULL ELSE 'title' END
FROM n;
WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 30000)
INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at, branch_id, depth, sibling_index,
                      search_terms)
SELECT 'msg_' || printf('%06d', k), 'thr_000001', k, 'user', 'hello', '{}', '2026-12-06', 1, k, 1,
       CASE WHEN k % 10000 = 0 THEN NULL ELSE 'hello' END
FROM n;
ANALYZE;
""",
}


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
async def test_the_pending_index_pass_reads_only_the_rows_without_terms(
    dialect: str, pg_server: PgServer | None, tmp_path: Any
) -> None:
    import sqlite3

    from threadstore.search import repository as search_repo

    if dialect == "postgresql" and pg_server is None:
        pytest.skip("no PostgreSQL")
    async with fresh_database(dialect, pg_server, tmp_path) as backend:
        for table, index in (("messages", "ix_messages_unindexed"), ("threads", "ix_threads_unindexed")):
            sql = str(search_repo._batch(table, True))
            if dialect == "postgresql":
                assert backend.dsn is not None
                if table == "messages":
                    await execute_sql(backend.dsn, _UNINDEXED_SEED["postgresql"])
                conn = await asyncpg.connect(backend.dsn)
                try:
                    rows = await conn.fetch("EXPLAIN " + sql.replace(":after", "''").replace(":lim", "500"))
                finally:
                    await conn.close()
                plan = "\n".join(r[0] for r in rows)
                assert f"Index Scan using {index} " in plan and "Seq Scan" not in plan, plan
            else:
                db = sqlite3.connect(backend.url.removeprefix("sqlite+aiosqlite:///"))
                try:
                    if table == "messages":
                        db.executescript(_UNINDEXED_SEED["sqlite"])
                    plan = "\n".join(
                        str(r[-1]) for r in db.execute("EXPLAIN QUERY PLAN " + sql, {"after": "", "lim": 500})
                    )
                finally:
                    db.close()
                assert f"INDEX {index} " in plan and f"SCAN {table}\n" not in plan + "\n", plan
