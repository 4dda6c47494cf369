"""Every list query is one index range scan on PostgreSQL: no sort, no sequential scan, at any depth.

The plans are taken from the repositories' own statements, on enough rows that the planner prefers a
sequential scan plus sort when no suitable index exists.
"""

from __future__ import annotations

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
SELECT 'thr_' || lpad(n::text, 8, '0'), 'user_' || (n % 200), 'Thread ' || n, '{}',
       CASE WHEN n % 10 = 0 THEN 'archived' ELSE 'active' END,
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


async def _plan(dsn: str, statement: Any, params: dict[str, Any]) -> str:
    compiled = statement.compile(dialect=postgresql.asyncpg.dialect())
    positional = [params[name] for name in compiled.positiontup]
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("EXPLAIN " + str(compiled), *positional)
    finally:
        await conn.close()
    return "\n".join(r[0] for r in rows)


def _assert_single_range_scan(plan: str, *indexes: str) -> None:
    assert "Seq Scan" not in plan, plan
    assert "Sort" not in plan, plan
    assert plan.count("Index Scan") == 1 or "Nested Loop" in plan, plan
    assert any(
        f"Index Scan using {index} " in plan or f"Index Scan Backward using {index} " in plan for index in indexes
    ), plan


# Halfway through user_7's threads, so the planner expects many rows on either side of the cursor.
CURSOR = (datetime.now(UTC) - timedelta(seconds=20_000), "thr_00020007")


@pytest.mark.parametrize(("any_status", "after"), [(False, False), (False, True), (True, False), (True, True)])
async def test_thread_pages_are_index_range_scans(seeded: str, any_status: bool, after: bool) -> None:
    statement = threads_repo._list_statement("postgresql", any_status, after, False, 0)
    params: dict[str, Any] = {"p_user": "user_7", "p_status": "active", "p_limit": 21}
    if after:
        params["p_after_ts"], params["p_after_id"] = CURSOR
    # Either (user_id, [status,] updated_at, id) index serves every shape in key order: no sort step.
    plan = await _plan(seeded, statement, params)
    _assert_single_range_scan(plan, "ix_threads_user_status_updated", "ix_threads_user_updated")


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("after", [False, True])
async def test_message_pages_are_index_range_scans_at_any_depth(seeded: str, order: str, after: bool) -> None:
    statement = messages_repo._PAGES[(order, after)]  # type: ignore[index]
    params: dict[str, Any] = {"p_thread": "big", "p_user": "user_big", "p_limit": 51}
    if after:
        params["p_after"] = 49_950 if order == "asc" else 50
    _assert_single_range_scan(await _plan(seeded, statement, params), "uq_messages_thread_seq")


async def test_single_thread_read_is_a_primary_key_lookup(seeded: str) -> None:
    plan = await _plan(seeded, threads_repo._SELECT, {"p_id": "thr_00000007", "p_user": "user_7"})
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
    plan = await _plan(seeded, idempotency_repo._ERASE, params)
    assert "Seq Scan" not in plan, plan
    assert "pk_idempotency_keys" in plan, plan
