"""What each write sends to PostgreSQL: its one write statement (the event recorded in it), after the reads its
decision needs, and no BEGIN or COMMIT; a write that cannot be one statement (a keyed request records its
key too, a permanent delete erases its thread's keys and events) is a transaction. And when a compare-and-set loses a
race, the unit runs again under a row lock."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event

from tests.conftest import Api, Factory
from tests.harness.app import BACKGROUND_TASKS
from tests.threads.helpers import recorded_events
from threadstore.db.unit_of_work import Tx
from threadstore.threads import repository

pytestmark = pytest.mark.postgres_only


@dataclass(frozen=True)
class Sent:
    verb: str  # the statement's first word
    in_transaction: bool  # whether the driver had a transaction open once it ran (a transaction begins lazily)
    sql: str = field(default="", compare=False, repr=False)


@contextmanager
def sent(api: Api) -> Iterator[list[Sent]]:
    """The statements the requests inside the block send (event delivery's background units left out)."""
    seen: list[Sent] = []

    def record(conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        task = asyncio.current_task()
        if task is None or not task.get_name().startswith(BACKGROUND_TASKS):
            driver = conn.connection.driver_connection
            seen.append(Sent(statement.split()[0], bool(driver.is_in_transaction()), statement))

    engine = api.database.engine.sync_engine
    event.listen(engine, "after_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "after_cursor_execute", record)


ONE_STATEMENT = [Sent("WITH", False)]
READ_THEN_WRITE = [Sent("SELECT", False), Sent("WITH", False)]


async def test_each_write_is_one_statement_with_its_event(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread(title="t", metadata={"keep": {"a": 1}})
    url = f"/api/threads/{thread['id']}"
    writes: list[tuple[str, str, dict[str, Any] | None, list[Sent]]] = [
        ("POST", "/api/threads", {"title": "new"}, ONE_STATEMENT),
        (
            "POST",
            "/api/threads",
            {"messages": [{"content": "a"}, {"role": "assistant", "content": "b"}]},
            ONE_STATEMENT,
        ),
        ("POST", f"{url}/messages", {"content": 'é "quoted"\n', "metadata": {"big": 2**64 - 1}}, ONE_STATEMENT),
        ("PATCH", url, {"title": "renamed", "metadata": {"keep": {"b": 2}, "n": [1, {"x": None}]}}, READ_THEN_WRITE),
        ("DELETE", url, None, READ_THEN_WRITE),  # archive
    ]
    for method, path, body, expected in writes:
        with sent(api) as seen:
            response = await api.request(method, path, user=user, json=body)
        assert response.status_code < 300, (method, path, response.text)
        assert seen == expected, (method, path, seen)
    events = await recorded_events(api, user)
    assert [kind for kind, _ in events] == [
        "thread.created",
        "thread.created",
        "thread.created",
        "message.created",
        "thread.updated",
        "thread.updated",
    ]


async def test_events_carry_what_the_database_decided(api: Api, user: str, create_thread: Factory) -> None:
    """The seq the statement handed out and the metadata as stored reach the event as they reach the client."""
    thread = await create_thread(messages=[{"content": "first"}])
    url = f"/api/threads/{thread['id']}"
    message = (await api.request("POST", f"{url}/messages", user=user, json={"content": "second"})).json()
    patched = (await api.request("PATCH", url, user=user, json={"metadata": {"b": 1e18, "a": {"z": 1}}})).json()
    assert message["seq"] == 2
    assert await recorded_events(api, user) == [
        ("thread.created", thread),
        ("message.created", message),
        ("thread.updated", patched),
    ]


async def test_a_keyed_write_is_one_transaction_with_its_key(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    headers = {"Idempotency-Key": "k-1"}
    with sent(api) as seen:
        response = await api.request(
            "POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": "x"}, headers=headers
        )
    assert response.status_code == 201, response.text
    # Lock the key, look it up, append (the same statement as without a key), record the key: one transaction.
    assert [s.verb for s in seen] == ["SELECT", "SELECT", "WITH", "INSERT"], seen
    assert all(s.in_transaction for s in seen), seen


async def test_a_permanent_delete_is_one_transaction_with_the_erasure_of_its_keys(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread(messages=[{"content": "a"}])
    with sent(api) as seen:
        response = await api.request("DELETE", f"/api/threads/{thread['id']}?permanent=true", user=user)
    assert response.status_code == 204, response.text
    # The delete with its event, then the erasure of the stored responses of the thread's keys (none here: the
    # statement runs anyway, it cannot know) and of its kept events, in one transaction.
    assert seen == [Sent("WITH", True), Sent("UPDATE", True), Sent("DELETE", True)], seen
    assert seen[1].sql.startswith("UPDATE idempotency_keys "), seen[1].sql
    assert seen[2].sql.startswith("DELETE FROM events "), seen[2].sql
    assert await recorded_events(api, user) == [("thread.deleted", {"id": thread["id"]})]


async def test_a_change_between_read_and_write_runs_the_unit_again_under_a_row_lock(
    api: Api, user: str, create_thread: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread = await create_thread(metadata={"a": 1})
    assert api.backend.dsn is not None
    read = repository.get_for_change
    locked: list[bool] = []

    async def a_rival_commits_after_the_first_read(tx: Tx, user_id: str, thread_id: str) -> Any:
        row = await read(tx, user_id, thread_id)
        locked.append(tx.in_transaction)
        if len(locked) == 1:
            rival = await asyncpg.connect(api.backend.dsn)
            try:
                await rival.execute(
                    """UPDATE threads SET metadata = metadata || '{"b": 2}', version = version + 1 WHERE id = $1""",
                    thread_id,
                )
            finally:
                await rival.close()
        return row

    monkeypatch.setattr(repository, "get_for_change", a_rival_commits_after_the_first_read)
    response = await api.request("PATCH", f"/api/threads/{thread['id']}", user=user, json={"metadata": {"c": 3}})

    assert response.status_code == 200, response.text
    assert locked == [False, True]  # a compare-and-set that lost, then a transaction that locks what it reads
    patched = response.json()
    assert (patched["metadata"], patched["version"]) == ({"a": 1, "b": 2, "c": 3}, 3)
    assert (await recorded_events(api, user))[-1] == ("thread.updated", patched)


async def test_branch_writes_say_what_they_send(api: Api, user: str, create_thread: Factory) -> None:
    """An append under a parent is one statement like any append; a branch switch reads (the thread, the
    message's place, the descent) and writes once; a branch delete and a fork are transactions."""
    thread = await create_thread(messages=[{"content": "q"}, {"role": "assistant", "content": "a"}])
    url = f"/api/threads/{thread['id']}"
    first = (await api.request("GET", f"{url}/messages", user=user)).json()["data"][0]
    with sent(api) as seen:
        edited = await api.request("POST", f"{url}/messages", user=user, json={"content": "q'", "parent_id": None})
    assert edited.status_code == 201, edited.text
    assert seen == ONE_STATEMENT, seen
    with sent(api) as seen:
        switched = await api.request("PATCH", url, user=user, json={"current_message_id": first["id"]})
    assert switched.status_code == 200, switched.text
    assert not any(s.in_transaction for s in seen), seen
    writes = [s for s in seen if "UPDATE threads" in s.sql]
    assert writes == [seen[-1]], seen  # reads, then the compare-and-set with its event
    for method, path, body in (
        ("DELETE", f"{url}/messages/{edited.json()['id']}", None),
        ("POST", f"{url}/fork", {}),
    ):
        with sent(api) as seen:
            response = await api.request(method, path, user=user, json=body)
        assert response.status_code < 300, response.text
        assert seen and all(s.in_transaction for s in seen), seen


async def test_an_append_under_a_parent_that_loses_a_race_runs_again_under_the_thread_lock(
    api: Api, user: str, create_thread: Factory
) -> None:
    """The one statement's thread update applies only at the version its snapshot read. A rival that commits
    while it waits makes it write nothing; the unit runs again as a transaction that locks the thread first,
    and the new sibling still gets the next index."""
    thread = await create_thread(messages=[{"content": "q"}, {"role": "assistant", "content": "a"}])
    url = f"/api/threads/{thread['id']}"
    question = (await api.request("GET", f"{url}/messages", user=user)).json()["data"][0]
    assert api.backend.dsn is not None
    rival = await asyncpg.connect(api.backend.dsn)
    try:
        holding = rival.transaction()
        await holding.start()
        await rival.execute("SELECT 1 FROM threads WHERE id = $1 FOR UPDATE", thread["id"])
        with sent(api) as seen:
            append = asyncio.create_task(
                api.request("POST", f"{url}/messages", user=user, json={"content": "a'", "parent_id": question["id"]})
            )
            await asyncio.sleep(0.5)  # the append's statement now waits for the rival's row lock
            await rival.execute("UPDATE threads SET version = version + 1 WHERE id = $1", thread["id"])
            await holding.commit()
            response = await append
    finally:
        await rival.close()
    assert response.status_code == 201, response.text
    assert (response.json()["sibling_index"], response.json()["sibling_count"]) == (2, 2)
    assert not seen[0].in_transaction and seen[0].verb == "WITH", seen  # the one statement, which lost
    locked = [s for s in seen if s.in_transaction]
    assert locked and "FOR UPDATE" in locked[0].sql, seen  # then the thread's lock first, in a transaction
    thread_now = (await api.request("GET", url, user=user)).json()
    assert thread_now["version"] == thread["version"] + 2  # the rival's change and the append, none lost
    assert thread_now["current_message_id"] == response.json()["id"]
