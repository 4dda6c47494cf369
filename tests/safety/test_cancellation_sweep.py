"""The cancellation sweep (the idea of SQLAlchemy 2.1's testing.cancellation): every write request is cancelled
at every database operation it reaches, the cancellation landing in the await of that operation. After each:
no connection checked out, no transaction left open, and the write wholly present or wholly absent — absent
unless the cancellation hit COMMIT itself, whose outcome the service cannot know.

Plus real clients against a real uvicorn server that drop the connection mid-request, at several delays and
(PostgreSQL) while the request waits inside its transaction on a row lock held by a foreign session."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from tests.conftest import (
    JWT_SECRET,
    Backend,
    fresh_database,
    idle_in_transaction,
    make_settings,
    new_user,
    pooler_for,
    running_api,
)
from tests.pg_server import PgServer
from tests.safety.endpoints import WRITE_ENDPOINTS, Endpoint, cases
from tests.safety.faults import COMMIT, Injector, writes_rows
from tests.safety.report import record_sweep
from tests.safety.state import (
    assert_clean_failure,
    assert_nothing_held,
    assert_service_works,
    assert_trees_consistent,
    delta,
    describe,
    record_clean_run,
    snapshot,
)
from threadstore.auth import issue_token

pytestmark = pytest.mark.through_pgbouncer


@pytest.mark.parametrize(("endpoint", "kind"), cases("cancel", WRITE_ENDPOINTS))
async def test_cancellation_sweep(
    endpoint: Endpoint, kind: str, pg_server: PgServer | None, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    pooler = pooler_for(kind, request)
    async with fresh_database(kind, pg_server, tmp_path, pooler=pooler) as backend:  # noqa: SIM117 (api needs backend)
        async with (
            running_api(backend, make_settings(backend, tmp_path)) as api,
            Injector(api.database.engine, backend) as injector,
        ):
            recorded = await record_clean_run(api, injector, endpoint, backend)
            operations, clean_change = recorded.operations, recorded.change

            outcomes: dict[str, int] = {}
            for number, operation in enumerate(operations, 1):
                user = new_user()
                ctx = await endpoint.setup(api, user)
                before = await snapshot(backend)
                with injector.scope(number, "cancel"):
                    task = asyncio.create_task(endpoint.call(api, user, ctx))
                    injector.cancel_task = task
                    try:
                        response: httpx.Response | None = await task
                    except asyncio.CancelledError:
                        response = None
                    finally:
                        injector.cancel_task = None
                where = f"{endpoint.name}: cancelled at op {number} ({operation[:40]})"
                assert injector.fired == operation, f"{where}: not reached ({injector.ops})"
                await assert_nothing_held(api)
                after = await snapshot(backend)
                assert_trees_consistent(after, where)
                change = delta(before, after)
                if response is not None and response.status_code < 300:
                    assert change == clean_change, f"{where}: {describe(change)}"
                    outcomes["completed"] = outcomes.get("completed", 0) + 1
                else:
                    if response is not None:
                        assert_clean_failure(response)
                    if _decides_the_outcome(operation, operations):
                        assert change.empty or change == clean_change, f"{where}: {describe(change)}"
                    else:
                        assert change.empty, f"{where}: a cancelled request left {describe(change)}"
                    outcomes["cancelled"] = outcomes.get("cancelled", 0) + 1
                try:
                    await assert_service_works(api, new_user())
                except AssertionError as error:
                    raise AssertionError(f"{where}: the service no longer works: {error}") from error
            record_sweep(f"{endpoint.name} (cancel)", kind, operations, len(operations), outcomes)


def _decides_the_outcome(operation: str, operations: list[str]) -> bool:
    """Cancelled here, the change may have happened whole: at COMMIT, or, for a unit PostgreSQL runs as one
    autocommit statement (it has no COMMIT), at that statement, which commits as it completes."""
    if operation == COMMIT:
        return True
    return COMMIT not in operations and writes_rows(operation)


# -- real clients dropping the connection, against a real uvicorn server -------------------------------------


async def pool_settles(app: FastAPI, within: float = 5.0) -> bool:
    """Whether every connection is back in the pool within `within` seconds: event delivery's own short units
    may hold one for a moment after the requests' commits, an abandoned request's would never come back."""
    deadline = asyncio.get_running_loop().time() + within
    while app.state.database.engine.pool.checkedout():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.02)
    return True


async def _send_and_drop(port: int, method: str, path: str, body: bytes, token: str, delay: float) -> None:
    _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    await asyncio.sleep(delay)
    writer.transport.abort()  # the client is gone: RST, no orderly close


async def test_clients_dropping_mid_request_leave_nothing_partial(backend: Backend, tmp_path: Path) -> None:
    """Appends whose clients vanish at 0 to 50 ms: each append is wholly there or wholly absent (seqs gapless,
    message_count and version agree), no connection leaked, no transaction left open."""
    async with running_api(backend, make_settings(backend, tmp_path), real_socket=True) as api:
        user = new_user()
        token = issue_token(JWT_SECRET, user, None)
        thread = await api.create_thread(user, title="t")
        path = f"/api/threads/{thread['id']}/messages"
        delays = [0.0, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05] * 3
        await asyncio.gather(
            *(_send_and_drop(api.port, "POST", path, b'{"content": "dropped"}', token, d) for d in delays)
        )
        await asyncio.sleep(0.5)  # let the server finish whatever it still runs
        current = (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()
        listed = (await api.request("GET", path, user=user, params={"limit": 100})).json()["data"]
        assert [m["seq"] for m in listed] == list(range(1, current["message_count"] + 1))
        assert current["version"] == current["message_count"] + 1
        assert await pool_settles(api.app), "a dropped request kept its connection"
        if backend.is_postgres:
            assert await idle_in_transaction(backend) == []
        ok = await api.request("POST", path, user=user, json={"content": "after"})
        assert ok.status_code == 201


@pytest.mark.postgres_only
async def test_client_dropping_while_its_transaction_waits_on_a_lock(backend: Backend, tmp_path: Path) -> None:
    """A PATCH blocked inside its transaction on a row lock held by a foreign session; the client drops the
    connection. When the lock is released the PATCH is wholly applied or wholly absent, and nothing stays open."""
    settings = make_settings(backend, tmp_path, lock_timeout_ms=10_000)
    async with running_api(backend, settings, real_socket=True) as api:
        user = new_user()
        token = issue_token(JWT_SECRET, user, None)
        thread = await api.create_thread(user, title="before")
        assert backend.dsn is not None
        foreign = await asyncpg.connect(backend.dsn)
        try:
            async with foreign.transaction():
                await foreign.execute("SELECT 1 FROM threads WHERE id = $1 FOR UPDATE", thread["id"])
                body = b'{"title": "after", "metadata": {"a": "b"}}'
                await _send_and_drop(api.port, "PATCH", f"/api/threads/{thread['id']}", body, token, 0.3)
                await asyncio.sleep(0.2)
        finally:
            await foreign.close()
        await asyncio.sleep(0.5)
        current = (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()
        assert (current["title"], current["metadata"], current["version"]) in [
            ("before", {}, 1),
            ("after", {"a": "b"}, 2),
        ], current
        assert await idle_in_transaction(backend) == []
        await assert_nothing_held(api)
