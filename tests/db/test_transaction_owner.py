"""The transaction owner's promises, proven on the real databases: a failed COMMIT is never a 2xx and leaves
no trace; the lock, pool and reachability bounds turn into 503s; only one module commits."""

from __future__ import annotations

import asyncio
import re
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, func, select, text

from tests.conftest import Api, Backend, execute_sql, fresh_database, make_settings, new_user, running_api
from tests.pg_server import PgServer
from threadstore.db.tables import events, threads
from threadstore.errors import NotFound

SRC = Path(__file__).resolve().parents[2] / "src"

FAIL_AT_COMMIT = """
CREATE FUNCTION fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.title = 'fail-at-commit' THEN
    RAISE EXCEPTION 'deferred check failed for %', NEW.id;
  END IF;
  RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER threads_fail_at_commit AFTER INSERT OR UPDATE ON threads
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION fail_at_commit();
"""


@pytest.fixture
async def pg_only_api(pg_server: PgServer | None, tmp_path: Path) -> AsyncIterator[Api]:
    """An api on its own PostgreSQL database, so schema changes (triggers) touch no other test."""
    async with fresh_database("postgresql", pg_server, tmp_path) as backend:
        assert backend.dsn is not None
        await execute_sql(backend.dsn, FAIL_AT_COMMIT)
        async with running_api(backend, make_settings(backend, tmp_path)) as api:
            yield api


async def _count(api: Api, table: Any) -> int:
    async with api.database.engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


def assert_clean_problem(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["request_id"] == response.headers["x-request-id"]
    for leak in ("deferred check", "SELECT", "INSERT", "Traceback", "sqlalchemy", "asyncpg", "plpgsql"):
        assert leak not in response.text


async def test_create_whose_commit_fails_is_not_acknowledged_and_leaves_no_trace(pg_only_api: Api) -> None:
    api, user = pg_only_api, new_user()
    before = (await _count(api, threads), await _count(api, events))

    response = await api.request(
        "POST", "/api/threads", user=user, json={"title": "fail-at-commit", "messages": [{"content": "hello"}]}
    )

    assert_clean_problem(response, 500)
    assert (await _count(api, threads), await _count(api, events)) == before
    listed = await api.request("GET", "/api/threads", user=user, params={"status": "all"})
    assert listed.json()["data"] == []


async def test_update_whose_commit_fails_keeps_the_old_state(pg_only_api: Api) -> None:
    api, user = pg_only_api, new_user()
    created = (await api.request("POST", "/api/threads", user=user, json={"title": "before"})).json()
    events_before = await _count(api, events)

    response = await api.request("PATCH", f"/api/threads/{created['id']}", user=user, json={"title": "fail-at-commit"})

    assert_clean_problem(response, 500)
    current = (await api.request("GET", f"/api/threads/{created['id']}", user=user)).json()
    assert (current["title"], current["version"]) == ("before", 1)
    assert await _count(api, events) == events_before
    # The connection that saw the failed COMMIT went back clean: the next write on the pool works.
    ok = await api.request("PATCH", f"/api/threads/{created['id']}", user=user, json={"title": "after"})
    assert ok.status_code == 200 and ok.json()["version"] == 2


async def test_commit_failure_raised_in_the_driver_path_is_a_clean_500(api: Api, user: str) -> None:
    """On both backends: the COMMIT itself raises (SQLAlchemy's commit event, i.e. the real commit path).

    With an Idempotency-Key, since on PostgreSQL a bare append is one statement that sends no COMMIT."""
    thread = (await api.request("POST", "/api/threads", user=user, json={"title": "t"})).json()
    sync_engine = api.database.engine.sync_engine

    def fail_commit(conn: Any) -> None:
        raise ConnectionError("injected commit failure")

    event.listen(sync_engine, "commit", fail_commit)
    try:
        response = await api.request(
            "POST",
            f"/api/threads/{thread['id']}/messages",
            user=user,
            json={"content": "lost?"},
            headers={"Idempotency-Key": "commit-fails"},
        )
    finally:
        event.remove(sync_engine, "commit", fail_commit)

    assert response.status_code >= 500
    assert "injected" not in response.text
    messages = (await api.request("GET", f"/api/threads/{thread['id']}/messages", user=user)).json()
    assert messages["data"] == []
    assert (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()["version"] == 1


async def test_failed_statement_rolls_back_the_whole_unit(api: Api, user: str) -> None:
    """The append's thread UPDATE succeeded, then its INSERT failed: the UPDATE must not survive."""
    thread = (await api.request("POST", "/api/threads", user=user, json={"title": "t"})).json()
    sync_engine = api.database.engine.sync_engine

    def fail_insert(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "INSERT INTO MESSAGES" in statement.upper():
            raise RuntimeError("injected insert failure")

    event.listen(sync_engine, "before_cursor_execute", fail_insert)
    try:
        response = await api.request("POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": "x"})
    finally:
        event.remove(sync_engine, "before_cursor_execute", fail_insert)

    assert response.status_code == 500
    assert "injected" not in response.text
    current = (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()
    assert (current["message_count"], current["version"]) == (0, 1)


@pytest.mark.postgres_only
@pytest.mark.through_pgbouncer
async def test_row_lock_held_elsewhere_gives_503_within_lock_timeout(backend: Backend, tmp_path: Path) -> None:
    settings = make_settings(backend, tmp_path, lock_timeout_ms=300)
    async with running_api(backend, settings) as api:
        user = new_user()
        thread = (await api.request("POST", "/api/threads", user=user, json={"title": "t"})).json()
        assert backend.dsn is not None
        foreign = await asyncpg.connect(backend.dsn)
        try:
            async with foreign.transaction():
                await foreign.execute("SELECT 1 FROM threads WHERE id = $1 FOR UPDATE", thread["id"])
                started = time.monotonic()
                response = await api.request("PATCH", f"/api/threads/{thread['id']}", user=user, json={"title": "x"})
                elapsed = time.monotonic() - started
        finally:
            await foreign.close()
        assert_clean_problem(response, 503)
        assert response.headers["retry-after"]
        assert elapsed < 2.0
        assert (
            await api.request("PATCH", f"/api/threads/{thread['id']}", user=user, json={"title": "y"})
        ).status_code == 200


async def test_pool_exhausted_past_its_timeout_gives_503(backend: Backend, tmp_path: Path) -> None:
    settings = make_settings(backend, tmp_path, pool_size=1, pool_max_overflow=0, pool_timeout=0.2)
    async with running_api(backend, settings) as api:
        held = await api.database.engine.connect()
        try:
            response = await api.request("GET", "/api/threads", user=new_user())
        finally:
            await held.close()
        assert_clean_problem(response, 503)
        assert response.headers["retry-after"]
        assert (await api.request("GET", "/api/threads", user=new_user())).status_code == 200


@pytest.mark.postgres_only
async def test_unreachable_database_gives_503_and_readyz_503(backend: Backend, tmp_path: Path) -> None:
    closed_port = Backend("postgresql", "postgresql+asyncpg://postgres@127.0.0.1:9/nothing", backend.dsn)
    settings = make_settings(closed_port, tmp_path, connect_timeout=1.0)
    async with running_api(closed_port, settings) as api:
        started = time.monotonic()
        response = await api.request("GET", "/api/threads", user=new_user())
        assert_clean_problem(response, 503)
        assert response.headers["retry-after"]
        assert time.monotonic() - started < 3.0
        ready = await api.client.get("/readyz")
        assert_clean_problem(ready, 503)
        assert (await api.client.get("/healthz")).status_code == 200


@pytest.mark.postgres_only
@pytest.mark.through_pgbouncer
async def test_every_connection_carries_the_configured_bounds(backend: Backend, tmp_path: Path) -> None:
    settings = make_settings(
        backend, tmp_path, statement_timeout_ms=1234, lock_timeout_ms=567, idle_in_transaction_timeout_ms=8901
    )
    async with running_api(backend, settings) as api:

        async def show(tx: Any) -> dict[str, str]:
            names = ["statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "application_name"]
            names.append("jit")
            return {n: (await tx.conn.execute(text(f"SHOW {n}"))).scalar_one() for n in names}

        values = await api.database.read(show)
    assert values == {
        "statement_timeout": "1234ms",
        "lock_timeout": "567ms",
        "idle_in_transaction_session_timeout": "8901ms",
        "application_name": settings.application_name,
        # A deep branch's page would otherwise be JIT-compiled (db/bounds.py).
        "jit": "off",
    }


@pytest.mark.sqlite_only
async def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(api: Api) -> None:
    async def pragmas(tx: Any) -> tuple[Any, ...]:
        names = ["journal_mode", "foreign_keys", "busy_timeout"]
        return tuple([(await tx.conn.exec_driver_sql(f"PRAGMA {n}")).scalar_one() for n in names])

    assert await api.database.read(pragmas) == ("wal", 1, 10_000)


@pytest.mark.sqlite_only
async def test_sqlite_write_units_take_the_write_lock_at_begin(api: Api) -> None:
    """BEGIN IMMEDIATE: while a write unit is open, no other writer can even begin (so none can fail later
    with "database is locked" on a lock upgrade)."""
    import sqlite3

    db_path = api.backend.url.split("///", 1)[1]
    inside = asyncio.Event()
    release = asyncio.Event()

    async def hold(tx: Any) -> None:
        inside.set()
        await release.wait()

    task = asyncio.create_task(api.database.write(hold))
    await inside.wait()
    other = sqlite3.connect(db_path, timeout=0, isolation_level=None)
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("BEGIN IMMEDIATE")
    finally:
        other.close()
        release.set()
        await task


async def test_concurrent_writers_never_fail_with_database_locked(api: Api, user: str) -> None:
    thread = (await api.request("POST", "/api/threads", user=user, json={})).json()

    async def writer(i: int) -> int:
        if i % 2:
            r = await api.request("POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": str(i)})
        else:
            r = await api.request("POST", "/api/threads", user=user, json={"title": f"t{i}"})
        return r.status_code

    statuses = await asyncio.gather(*(writer(i) for i in range(32)))
    assert statuses == [201] * 32
    current = (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()
    assert current["message_count"] == 16


def test_only_the_transaction_owner_commits_or_rolls_back() -> None:
    out = subprocess.run(
        # Python modules only: the vendored scripts of /docs (apidocs/assets) have commit()s of their own.
        ["grep", "-rln", "--include=*.py", r"commit()\|rollback()\|\.begin()", str(SRC)],
        capture_output=True,
        text=True,
    ).stdout
    files = sorted(Path(line).relative_to(SRC).as_posix() for line in out.split())
    assert files == ["threadstore/db/unit_of_work.py"]


def test_no_module_closes_connections_itself() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "unit_of_work.py":
            continue
        if re.search(r"(conn|session|connection)\.close\(\)", path.read_text()):
            offenders.append(path.name)
    assert offenders == []


async def test_event_delivery_is_woken_only_once_a_unit_that_recorded_events_committed(api: Api) -> None:
    """Side effects follow the commit: never for a unit that rolled back, nor for one that recorded nothing."""
    ran: list[str] = []
    api.database.on_events_committed = lambda: ran.append("woken")

    async def committed(tx: Any) -> None:
        tx.wrote_events = True

    async def recorded_nothing(tx: Any) -> None:
        pass

    async def failed(tx: Any) -> None:
        tx.wrote_events = True
        raise NotFound("no")

    await api.database.write(committed)
    await api.database.write(recorded_nothing)
    with pytest.raises(NotFound):
        await api.database.write(failed)
    assert ran == ["woken"]
