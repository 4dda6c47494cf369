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
from threadstore.threads import repository as threads_repo

SEED = """
INSERT INTO threads (id, user_id, title, metadata, status, created_at, updated_at, message_count, version)
SELECT 'thr_' || lpad(n::text, 8, '0'), 'user_' || (n % 100), 'Thread ' || n, '{}',
       CASE WHEN n % 3 = 0 THEN 'archived' ELSE 'active' END,
       now() - n * interval '1 second', now() - n * interval '1 second', 0, 1
FROM generate_series(1, 40000) n;
INSERT INTO threads (id, user_id, title, metadata, status, created_at, updated_at, message_count, version)
VALUES ('big', 'user_big', 'big', '{}', 'active', now(), now(), 50000, 1);
INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at)
SELECT 'msg_' || k, 'big', k, 'user', 'hello', '{}', now() FROM generate_series(1, 50000) k;
INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body, response_headers, created_at,
                              thread_id)
SELECT 'user_' || (n % 200), 'key_' || n, md5(n::text) || md5(n::text), 201, '{}', '{}', now(),
       'thr_' || lpad((n % 40000)::text, 8, '0')
FROM generate_series(1, 40000) n;
ANALYZE threads; ANALYZE messages; ANALYZE idempotency_keys;
"""


@pytest.fixture(scope="module")
async def seeded(pg_server: PgServer | None, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    async with fresh_database("postgresql", pg_server, tmp_path_factory.mktemp("plans")) as backend:
        assert backend.dsn is not None
        await execute_sql(backend.dsn, SEED)
        yield backend.dsn


def _sql_literal(value: Any) -> str:
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


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("after", [False, True])
async def test_message_pages_are_index_range_scans_at_any_depth(
    seeded: str, order: str, after: bool, mode: str
) -> None:
    statement = messages_repo._PAGES[(order, after)]  # type: ignore[index]
    params: dict[str, Any] = {"p_thread": "big", "p_user": "user_big", "p_limit": 51}
    if after:
        params["p_after"] = 49_950 if order == "asc" else 50
    _assert_single_range_scan(await _plan(seeded, statement, params, mode), "uq_messages_thread_seq")


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
