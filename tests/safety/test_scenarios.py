"""The eleven session-safety scenarios of the original report, each on a real database with its real
invariant: problem+json revealing nothing, the database exactly as before (full snapshot), no connection
checked out, no transaction left open (PostgreSQL: no `idle in transaction` backend), the next request works.

The report "proved" these with AsyncMock sessions asserting that rollback() was called; here the faults go
through the driver (see faults.py) and the checks read the database."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.conftest import Api, Backend, Factory, make_settings, running_api
from tests.safety.faults import COMMIT, DISCONNECT, ERROR, Injector
from tests.safety.scenario_helpers import (
    Request,
    assert_fails_cleanly,
    makes_durable,
    op_number,
    reads,
    writes,
)
from tests.safety.state import assert_clean_failure, assert_nothing_held, delta, snapshot


def patch(api: Api, user: str, thread: dict[str, Any], title: str) -> Any:
    return lambda: api.request(
        "PATCH", f"/api/threads/{thread['id']}", user=user, json={"title": title, "metadata": {"k": title}}
    )


async def test_update_when_commit_fails(api: Api, injector: Injector, user: str, create_thread: Factory) -> None:
    twin, target = await create_thread(title="twin"), await create_thread(title="target")
    number = await op_number(injector, patch(api, user, twin, "renamed"), makes_durable(api.backend))
    await assert_fails_cleanly(api, injector, patch(api, user, target, "renamed"), number)
    current = (await api.request("GET", f"/api/threads/{target['id']}", user=user)).json()
    assert (current["title"], current["version"]) == ("target", 1)


async def test_create_when_the_insert_fails(api: Api, injector: Injector, user: str) -> None:
    body = {"title": "t", "metadata": {"a": "b"}, "messages": [{"content": "one"}, {"content": "two"}]}

    def create() -> Any:
        return api.request("POST", "/api/threads", user=user, json=body)

    # The messages go in after the thread: failing them must take the already-inserted thread away too.
    number = await op_number(injector, create, writes("INSERT", "messages"))
    await assert_fails_cleanly(api, injector, create, number)
    number = await op_number(injector, create, writes("INSERT", "threads"))
    await assert_fails_cleanly(api, injector, create, number)


async def test_get_when_a_query_fails(api: Api, injector: Injector, user: str, create_thread: Factory) -> None:
    thread = await create_thread(title="x")

    def get() -> Any:
        return api.request("GET", f"/api/threads/{thread['id']}", user=user)

    number = await op_number(injector, get, reads("threads"))
    for _ in range(3 * api.app.state.settings.pool_size):  # a leaked session per failure would drain the pool
        await assert_fails_cleanly(api, injector, get, number)
    assert (await get()).status_code == 200


async def test_repositories_share_the_requests_unit_of_work(api: Api, injector: Injector, user: str) -> None:
    """Threads, messages, idempotency keys (and the events outbox) all write through the request's one
    connection and transaction: failing the last statement before COMMIT undoes every repository's rows."""
    body = {"title": "shared", "messages": [{"content": "a"}, {"content": "b"}]}

    def create(key: str) -> Any:
        return lambda: api.request("POST", "/api/threads", user=user, json=body, headers={"Idempotency-Key": key})

    with injector.scope():
        response = await create("first")()
    assert response.status_code == 201
    assert len(set(injector.connections)) == 1, "the request's statements ran on more than one connection"
    commit_at = injector.ops.index(COMMIT) + 1
    assert injector.ops.count(COMMIT) == 1, injector.ops
    tables = {t for t in ("threads", "messages", "idempotency_keys", "events") if any(t in op for op in injector.ops)}
    assert {"threads", "messages", "idempotency_keys"} <= tables, injector.ops
    await assert_fails_cleanly(api, injector, create("second"), commit_at - 1)
    await assert_fails_cleanly(api, injector, create("third"), commit_at)


async def test_archive_when_its_write_fails(api: Api, injector: Injector, user: str, create_thread: Factory) -> None:
    twin, target = await create_thread(), await create_thread()

    def archive(thread: dict[str, Any]) -> Any:
        return lambda: api.request("DELETE", f"/api/threads/{thread['id']}", user=user)

    number = await op_number(injector, archive(twin), writes("UPDATE", "threads"))
    await assert_fails_cleanly(api, injector, archive(target), number)
    current = (await api.request("GET", f"/api/threads/{target['id']}", user=user)).json()
    assert (current["status"], current["archived_at"]) == ("active", None)


async def test_permanent_delete_rolled_back_after_its_erasure_keeps_the_keys_replaying(
    api: Api, injector: Injector, user: str
) -> None:
    """The erasure of the thread's keys is part of the delete's transaction: failing it, or the COMMIT after
    it, leaves the thread and every stored response as they were, and the keys replay them."""

    async def keyed_thread(name: str) -> tuple[dict[str, Any], list[tuple[Request, httpx.Response]]]:
        headers = {"Idempotency-Key": f"{name}-create"}
        body = {"title": name, "messages": [{"content": "kept"}]}

        def create() -> Any:
            return api.request("POST", "/api/threads", user=user, json=body, headers=headers)

        created = await create()
        url = f"/api/threads/{created.json()['id']}/messages"

        def append() -> Any:
            return api.request("POST", url, user=user, json={"content": "x"}, headers={"Idempotency-Key": name})

        return created.json(), [(create, created), (append, await append())]

    def delete(thread: dict[str, Any]) -> Any:
        return lambda: api.request("DELETE", f"/api/threads/{thread['id']}", user=user, params={"permanent": "true"})

    twin, _ = await keyed_thread("twin")
    erasure = await op_number(injector, delete(twin), writes("UPDATE", "idempotency_keys"))
    commit = len(injector.ops)  # the twin's last operation; between them, the erasure of the kept events
    target, keyed = await keyed_thread("target")
    for number, flavour in [(erasure, ERROR), (erasure + 1, ERROR), (commit, ERROR), (commit, DISCONNECT)]:
        await assert_fails_cleanly(api, injector, delete(target), number, flavour)
        assert injector.fired == (COMMIT if number == commit else injector.ops[number - 1]), injector.ops
        for repeat, first in keyed:
            replayed = await repeat()
            assert (replayed.status_code, replayed.content) == (201, first.content), (number, flavour)
            assert replayed.headers["idempotent-replayed"] == "true"
    assert (await api.request("GET", f"/api/threads/{target['id']}", user=user)).status_code == 200


async def test_auto_rename_when_the_title_write_fails(
    api: Api, injector: Injector, user: str, create_thread: Factory
) -> None:
    first = {"messages": [{"content": "Can you help me plan a three day trip to Lisbon in March with kids?"}]}
    twin, target = await create_thread(**first), await create_thread(**first)

    def rename(thread: dict[str, Any]) -> Any:
        return lambda: api.request("POST", f"/api/threads/{thread['id']}/auto-rename", user=user)

    number = await op_number(injector, rename(twin), writes("UPDATE", "threads"))
    await assert_fails_cleanly(api, injector, rename(target), number)
    current = (await api.request("GET", f"/api/threads/{target['id']}", user=user)).json()
    assert (current["title"], current["version"]) == (None, 1)


async def test_list_when_the_query_fails(api: Api, injector: Injector, user: str, create_thread: Factory) -> None:
    await create_thread(title="listed")

    def list_threads() -> Any:
        return api.request("GET", "/api/threads", user=user)

    number = await op_number(injector, list_threads, reads("threads"))
    await assert_fails_cleanly(api, injector, list_threads, number)
    assert [t["title"] for t in (await list_threads()).json()["data"]] == ["listed"]


async def test_session_state_after_an_error(backend: Backend, tmp_path: Path, user: str) -> None:
    """After a failed statement the same pooled connection (a pool of one) serves the next request correctly:
    its aborted transaction was rolled back, not carried into the next request, and it was not discarded."""
    settings = make_settings(backend, tmp_path, pool_size=1, pool_max_overflow=0)
    async with running_api(backend, settings) as api, Injector(api.database.engine, backend) as injector:
        thread = (await api.request("POST", "/api/threads", user=user, json={})).json()
        url = f"/api/threads/{thread['id']}/messages"

        def append() -> Any:
            return api.request("POST", url, user=user, json={"content": "x"})

        number = await op_number(injector, append, writes("UPDATE", "threads"))
        await assert_fails_cleanly(api, injector, append, number)
        failed_on = injector.connections[0]
        with injector.scope():
            after = await append()
        assert after.status_code == 201 and after.json()["seq"] == 2, after.text
        assert injector.connections[0] == failed_on


async def test_concurrent_requests_one_failing_one_succeeding(
    api: Api, injector: Injector, user: str, create_thread: Factory
) -> None:
    doomed, healthy = await create_thread(title="doomed"), await create_thread(title="healthy")

    def append(thread: dict[str, Any]) -> Any:
        return lambda: api.request("POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": "c"})

    number = await op_number(injector, append(doomed), makes_durable(api.backend))
    before = await snapshot(api.backend)

    async def failing() -> httpx.Response:
        with injector.scope(number, ERROR):  # only this task's operations are counted and failed
            return await append(doomed)()

    bad, good = await asyncio.gather(failing(), append(healthy)())
    assert_clean_failure(bad)
    assert good.status_code == 201 and good.json()["seq"] == 1, good.text
    changed = delta(before, await snapshot(api.backend))
    assert sum(changed.added["messages"].values()) == 1 and sum(changed.removed["messages"].values()) == 0
    assert (await api.request("GET", f"/api/threads/{doomed['id']}", user=user)).json()["message_count"] == 1
    assert (await api.request("GET", f"/api/threads/{healthy['id']}", user=user)).json()["message_count"] == 1
    await assert_nothing_held(api)


async def _fail_many(api: Api, injector: Injector, user: str, create_thread: Factory) -> None:
    """A mix of failing requests: every kind of operation failed once, in both flavours."""
    thread = await create_thread(messages=[{"content": "hello there"}])
    requests = [
        lambda: api.request("GET", "/api/threads", user=user),
        lambda: api.request("GET", f"/api/threads/{thread['id']}", user=user),
        lambda: api.request("POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": "y"}),
        lambda: api.request("PATCH", f"/api/threads/{thread['id']}", user=user, json={"title": "z"}),
        lambda: api.request("POST", "/api/threads", user=user, json={"messages": [{"content": "q"}]}),
    ]
    for request in requests:
        with injector.scope():
            await request()
        count = len(injector.ops)
        for number in range(1, count + 1):
            for flavour in (ERROR, DISCONNECT):
                with injector.scope(number, flavour):
                    response = await request()
                assert response.status_code < 300 or response.status_code in (500, 503), response.text


async def test_no_unclosed_connections_after_errors(
    api: Api, injector: Injector, user: str, create_thread: Factory
) -> None:
    await _fail_many(api, injector, user, create_thread)
    await assert_nothing_held(api)  # polls: event delivery checks connections out briefly in the background
    pool: Any = api.database.engine.pool
    assert pool.checkedin() <= api.app.state.settings.pool_size  # nothing beyond the pool's own connections
    if api.backend.is_postgres:
        assert api.backend.dsn is not None
        # An invalidated record stays in the pool without a connection (it reconnects on next use), so a pool
        # of n records holds at most n server sessions: one more would be a session nobody will ever close.
        # Besides those, event delivery keeps its one LISTEN session, outside the pool (events/listener.py).
        # A session whose connection was just closed may take a moment to leave (its backend exits after the
        # socket closes: long on a loaded machine), so a surplus must last a while to count.
        conn = await asyncpg.connect(api.backend.dsn)
        try:
            for _ in range(50):
                sessions = await conn.fetch(
                    # This database's only: PgBouncer's idle server sessions of other tests carry the run's name.
                    "SELECT state, query FROM pg_stat_activity"
                    " WHERE application_name = $1 AND datname = current_database()",
                    api.app.state.settings.application_name,
                )
                if len(sessions) <= pool.checkedin() + 1:
                    break
                await asyncio.sleep(0.1)
        finally:
            await conn.close()
        assert len(sessions) <= pool.checkedin() + 1, f"a server session outlived its pooled connection: {sessions}"
    # (The harness checks the checkout ledger again after shutdown, and the run fails on SQLAlchemy's
    # "garbage collector is trying to clean up" warning, which a dropped unreturned connection causes.)


async def test_no_hanging_transactions_after_errors(
    api: Api, injector: Injector, user: str, create_thread: Factory
) -> None:
    await _fail_many(api, injector, user, create_thread)
    await assert_nothing_held(api)
    if api.backend.is_postgres:
        return  # assert_nothing_held checked pg_stat_activity for `idle in transaction`
    # SQLite: nobody holds the write lock, so a foreign writer gets it at once (busy timeout 0).
    path = api.backend.url.split("///", 1)[1]
    foreign = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        foreign.execute("BEGIN IMMEDIATE")
        foreign.execute("ROLLBACK")
    finally:
        foreign.close()
