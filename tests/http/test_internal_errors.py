"""An induced failure answers 500 with a problem body that reveals nothing, and is logged with the request id."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from tests.conftest import Api, Factory
from tests.http.problems import assert_problem, message_count
from threadstore.http.request_id import RequestIdLogFilter

# A statement the database itself refuses (a CHECK violation on role; on PostgreSQL also an unknown thread),
# so the driver error carries the SQL, the values and the constraint name: none of it may reach the client.
FAILING_INSERT = (
    "INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at) VALUES "
    "('SECRET-SQL-TEXT', 'SECRET-THREAD', 1, 'SECRET-ROLE', 'SECRET-CONTENT', '{}', '2020-01-01 00:00:00')"
)
LEAKS = ["SECRET", "SELECT", "INSERT", "Traceback", "sqlalchemy", "asyncpg", "sqlite", "constraint", "/work/", ".py"]


@pytest.fixture
def app_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Captures the service's log records, each stamped with the request id as the real log set-up does."""
    logger = logging.getLogger("threadstore")
    stamp = RequestIdLogFilter()
    caplog.handler.addFilter(stamp)
    attached = not logger.propagate
    if attached:
        logger.addHandler(caplog.handler)
    caplog.set_level(logging.INFO, logger="threadstore")
    try:
        yield caplog
    finally:
        caplog.handler.removeFilter(stamp)
        if attached:
            logger.removeHandler(caplog.handler)


def inserts_a_message(statement: str) -> bool:
    # On PostgreSQL the message insert travels inside a WITH clause together with its event.
    return "INSERT INTO MESSAGES" in statement.upper()


def rewrite_message_inserts(conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> tuple[str, Any]:
    if inserts_a_message(statement):
        return FAILING_INSERT, ()
    return statement, parameters


def raise_on_message_inserts(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
    if inserts_a_message(statement):
        raise RuntimeError("SECRET-SQL-TEXT from a bug in the data layer")


def assert_reveals_nothing(response: httpx.Response) -> None:
    body = assert_problem(response, 500)
    for leak in LEAKS:
        assert leak.lower() not in response.text.lower(), (leak, response.text)
    assert set(body) == {"type", "title", "status", "detail", "request_id"}


def records_of(caplog: pytest.LogCaptureFixture, request_id: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if getattr(r, "request_id", None) == request_id and r.levelno >= logging.ERROR]


async def append_with_listener(api: Api, user: str, thread_id: str, listener: Any, **options: Any) -> httpx.Response:
    engine = api.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", listener, **options)
    try:
        return await api.request(
            "POST",
            f"/api/threads/{thread_id}/messages",
            user=user,
            json={"content": "hello"},
            headers={"X-Request-ID": "fail-req-1"},
        )
    finally:
        event.remove(engine, "before_cursor_execute", listener)


async def test_a_database_error_is_500_without_sql_or_driver_text(
    api: Api, user: str, create_thread: Factory, app_log: pytest.LogCaptureFixture
) -> None:
    thread = await create_thread()
    response = await append_with_listener(api, user, thread["id"], rewrite_message_inserts, retval=True)
    assert_reveals_nothing(response)


async def test_a_database_error_is_logged_with_the_request_id(
    api: Api, user: str, create_thread: Factory, app_log: pytest.LogCaptureFixture
) -> None:
    thread = await create_thread()
    response = await append_with_listener(api, user, thread["id"], rewrite_message_inserts, retval=True)
    assert response.status_code == 500
    logged = records_of(app_log, response.headers["x-request-id"])
    assert logged, [(r.name, r.getMessage()) for r in app_log.records]
    assert any(r.exc_info for r in logged), "the cause must reach the log for diagnosis"


async def test_a_database_error_rolls_the_whole_request_back(
    api: Api, user: str, create_thread: Factory, app_log: pytest.LogCaptureFixture
) -> None:
    thread = await create_thread()
    await append_with_listener(api, user, thread["id"], rewrite_message_inserts, retval=True)
    after = (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()
    assert after["message_count"] == 0 and after["version"] == 1  # the seq bump before the insert is undone
    assert await message_count(api, thread["id"]) == 0
    retried = await api.request("POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": "ok"})
    assert retried.status_code == 201 and retried.json()["seq"] == 1


async def test_an_unexpected_exception_is_500_without_its_text(
    api: Api, user: str, create_thread: Factory, app_log: pytest.LogCaptureFixture
) -> None:
    thread = await create_thread()
    response = await append_with_listener(api, user, thread["id"], raise_on_message_inserts)
    assert_reveals_nothing(response)
    logged = records_of(app_log, response.headers["x-request-id"])
    assert any(r.exc_info and "SECRET-SQL-TEXT" in str(r.exc_info[1]) for r in logged), [
        (r.name, r.getMessage()) for r in app_log.records
    ]
    assert (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()["message_count"] == 0


async def test_an_idempotent_request_that_fails_stores_no_key(
    api: Api, user: str, create_thread: Factory, app_log: pytest.LogCaptureFixture
) -> None:
    thread = await create_thread()
    engine = api.database.engine.sync_engine
    url = f"/api/threads/{thread['id']}/messages"
    headers = {"Idempotency-Key": "fails-once"}
    event.listen(engine, "before_cursor_execute", rewrite_message_inserts, retval=True)
    try:
        failed = await api.request("POST", url, user=user, json={"content": "x"}, headers=headers)
    finally:
        event.remove(engine, "before_cursor_execute", rewrite_message_inserts)
    assert failed.status_code == 500
    retried = await api.request("POST", url, user=user, json={"content": "x"}, headers=headers)
    assert retried.status_code == 201, retried.text
    assert "idempotent-replayed" not in retried.headers
