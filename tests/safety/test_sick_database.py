"""A stuck or sick database: every wait is bounded and ends in a clean 503, nothing is leaked, and the service
recovers by itself once the database is well again. Bounds are asserted with a margin of three."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import Api, Backend, Factory, fresh_database, make_settings, new_user, running_api
from tests.pg_server import PgServer
from tests.safety.state import assert_clean_failure, assert_nothing_held, assert_service_works, settle, snapshot

LOCK_TIMEOUT_MS = 500
BUSY_TIMEOUT_MS = 500
GIVE_UP_SECONDS = 10.0


@asynccontextmanager
async def row_locked(backend: Backend, thread_id: str) -> AsyncIterator[None]:
    """A foreign session holding the thread's row lock (PostgreSQL) or the write lock (SQLite)."""
    if backend.is_postgres:
        assert backend.dsn is not None
        conn = await asyncpg.connect(backend.dsn)
        try:
            async with conn.transaction():
                await conn.execute("SELECT 1 FROM threads WHERE id = $1 FOR UPDATE", thread_id)
                yield
        finally:
            await conn.close()
    else:
        foreign = sqlite3.connect(backend.url.split("///", 1)[1], isolation_level=None)
        try:
            foreign.execute("BEGIN IMMEDIATE")
            yield
            foreign.execute("ROLLBACK")
        finally:
            foreign.close()


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"lock_timeout_ms": LOCK_TIMEOUT_MS, "sqlite_busy_timeout_ms": BUSY_TIMEOUT_MS}


# Through PgBouncer too: there the bound is the role's default in the database, not a startup parameter, and it
# must hold for every kind of unit — PATCH and POST run as one statement without BEGIN, DELETE as a transaction.
@pytest.mark.through_pgbouncer
@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [("PATCH", "", {"title": "blocked"}), ("POST", "/messages", {"content": "blocked"}), ("DELETE", "", None)],
)
async def test_a_held_lock_fails_the_request_within_the_lock_timeout(
    api: Api, user: str, create_thread: Factory, method: str, suffix: str, body: dict[str, Any] | None
) -> None:
    """PostgreSQL: a row lock held by a foreign session, lock_timeout 500 ms. SQLite: a foreign writer holding the
    write lock, busy_timeout 500 ms. Either way: 503 with Retry-After, in bounded time, nothing changed."""
    thread = await create_thread(title="locked")
    await settle(api.backend)
    url = f"/api/threads/{thread['id']}{suffix}"
    before = await snapshot(api.backend)
    async with row_locked(api.backend, thread["id"]):
        started = time.monotonic()
        async with asyncio.timeout(GIVE_UP_SECONDS):  # a bound that does not hold fails here, never hangs the run
            response = await api.request(method, url, user=user, **({"json": body} if body else {}))
        elapsed = time.monotonic() - started
    assert_clean_failure(response)
    assert response.status_code == 503  # lock_not_available / database is locked: busy, retry later
    assert LOCK_TIMEOUT_MS / 1000 * 0.8 <= elapsed < 3 * LOCK_TIMEOUT_MS / 1000 + 1.0, elapsed
    assert await snapshot(api.backend) == before
    await assert_nothing_held(api)
    ok = await api.request(method, url, user=user, **({"json": body} if body else {}))
    assert ok.status_code < 300, ok.text


@pytest.mark.through_pgbouncer
@pytest.mark.postgres_only
async def test_a_read_waiting_on_a_table_lock_fails_within_the_lock_timeout(
    api: Api, user: str, create_thread: Factory
) -> None:
    """A read, which runs without BEGIN, waits on a foreign ACCESS EXCLUSIVE lock (a migration's, say): 503
    within the lock timeout, then served again."""
    thread = await create_thread(title="locked")
    await settle(api.backend)
    assert api.backend.dsn is not None
    conn = await asyncpg.connect(api.backend.dsn)
    try:
        async with conn.transaction():
            await conn.execute("LOCK TABLE threads IN ACCESS EXCLUSIVE MODE")
            started = time.monotonic()
            async with asyncio.timeout(GIVE_UP_SECONDS):
                response = await api.request("GET", f"/api/threads/{thread['id']}", user=user)
            elapsed = time.monotonic() - started
    finally:
        await conn.close()
    assert_clean_failure(response)
    assert response.status_code == 503
    assert LOCK_TIMEOUT_MS / 1000 * 0.8 <= elapsed < 3 * LOCK_TIMEOUT_MS / 1000 + 1.0, elapsed
    await assert_nothing_held(api)
    assert (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).status_code == 200


@pytest.fixture
async def tiny_pool_api(backend: Backend, tmp_path: Path) -> AsyncIterator[Api]:
    settings = make_settings(
        backend,
        tmp_path,
        pool_size=1,
        pool_max_overflow=0,
        pool_timeout=0.5,
        lock_timeout_ms=20_000,
        sqlite_busy_timeout_ms=20_000,
    )
    async with running_api(backend, settings) as created:
        yield created


async def test_pool_exhaustion_is_503_after_the_pool_timeout(tiny_pool_api: Api, user: str) -> None:
    """Pool of one, no overflow, pool_timeout 0.5 s: while a slow request holds the only connection (waiting on a
    foreign lock), the others get 503 with Retry-After after the pool timeout; the slow one then completes."""
    api = tiny_pool_api
    thread = (await api.request("POST", "/api/threads", user=user, json={"title": "slow"})).json()
    await settle(api.backend)  # the event publisher, done with the creation's event, holds no connection
    async with row_locked(api.backend, thread["id"]):
        slow = asyncio.create_task(
            api.request("PATCH", f"/api/threads/{thread['id']}", user=user, json={"title": "finally"})
        )
        while api.database.engine.pool.checkedout() == 0:  # type: ignore[attr-defined]  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        started = time.monotonic()
        waiting = await asyncio.gather(
            *(api.request("GET", f"/api/threads/{thread['id']}", user=user) for _ in range(5))
        )
        elapsed = time.monotonic() - started
        for response in waiting:
            assert_clean_failure(response)
            assert response.status_code == 503
        assert 0.4 <= elapsed < 3 * 0.5 + 1.0, elapsed
        assert not slow.done()
    done = await slow
    assert done.status_code == 200 and done.json()["title"] == "finally", done.text
    await assert_nothing_held(api)
    await assert_service_works(api, new_user())


@pytest.mark.postgres_only
async def test_killing_every_app_connection_under_load_is_survived(api: Api, user: str, create_thread: Factory) -> None:
    """pg_terminate_backend of every connection of the app, three times, while 60 requests run: each answer is
    a success or a clean 503; the appends that succeeded are all there with gapless seqs; afterwards ordinary
    requests succeed with no restart."""
    thread = await create_thread(title="under fire")
    url = f"/api/threads/{thread['id']}/messages"
    assert api.backend.dsn is not None
    killer = await asyncpg.connect(api.backend.dsn)

    async def one(i: int) -> httpx.Response:
        if i % 3 == 0:
            return await api.request("GET", url, user=user)
        return await api.request("POST", url, user=user, json={"content": f"m{i}"})

    async def kill_all() -> int:
        killed = 0
        for _ in range(3):
            await asyncio.sleep(0.05)
            killed += await killer.fetchval(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = $1 AND datname = current_database()) AS t",
                api.app.state.settings.application_name,
            )
        return killed

    try:
        *responses, killed = await asyncio.gather(*(one(i) for i in range(60)), kill_all())
    finally:
        await killer.close()
    assert killed > 0
    appended = 0
    for response in responses:
        if response.status_code >= 300:
            assert_clean_failure(response)
            assert response.status_code == 503, response.text
        elif response.request.method == "POST":
            appended += 1
    current = (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()
    listed = (await api.request("GET", url, user=user, params={"limit": 100})).json()["data"]
    assert [m["seq"] for m in listed] == list(range(1, current["message_count"] + 1))
    # Every acknowledged append is there; an unacknowledged one may be there only if its COMMIT's answer was lost.
    assert current["message_count"] >= appended
    await assert_nothing_held(api)
    await assert_service_works(api, new_user())


@pytest.mark.postgres_only
async def test_a_stopped_server_gives_503_and_the_service_recovers_by_itself(
    backend: Backend, private_pg: PgServer, tmp_path: Path
) -> None:
    """The private cluster of this run is stopped (never the shared server): requests get 503 with Retry-After
    within the connect timeout, /readyz is 503; once it is started again the service recovers unaided."""
    connect_timeout = 2.0
    async with fresh_database("postgresql", private_pg, tmp_path) as own:
        settings = make_settings(own, tmp_path, connect_timeout=connect_timeout, pool_timeout=2.0)
        user = new_user()
        async with running_api(own, settings) as api:
            created = await api.request("POST", "/api/threads", user=user, json={"title": "before the outage"})
            assert created.status_code == 201
            await asyncio.to_thread(private_pg.pg_ctl_stop, "immediate")
            try:
                for method, path, body in [
                    ("GET", "/api/threads", None),
                    ("POST", "/api/threads", {"title": "during"}),
                    ("POST", f"/api/threads/{created.json()['id']}/messages", {"content": "during"}),
                    ("GET", "/api/threads", None),
                ]:
                    started = time.monotonic()
                    response = await api.request(method, path, user=user, **({"json": body} if body else {}))
                    elapsed = time.monotonic() - started
                    assert_clean_failure(response)
                    assert response.status_code == 503, response.text
                    assert elapsed < 3 * connect_timeout, (method, path, elapsed)
                readyz = await api.client.get("/readyz")
                assert readyz.status_code == 503 and int(readyz.headers["retry-after"]) >= 1
            finally:
                await asyncio.to_thread(private_pg.pg_ctl_start)
            deadline = time.monotonic() + 30
            while (await api.client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "the service did not recover after the database came back"
                await asyncio.sleep(0.2)
            listed = await api.request("GET", "/api/threads", user=user)
            assert [t["title"] for t in listed.json()["data"]] == ["before the outage"]
            await assert_service_works(api, new_user())
            await assert_nothing_held(api)
