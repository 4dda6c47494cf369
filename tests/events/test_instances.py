"""Across instances and database restarts (PostgreSQL): a write on one server reaches the streams of
another within a second, and a stream that lives through a restart of the database loses nothing."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import APP_NAME, Backend, execute_sql, fresh_database, make_settings, new_user
from tests.events.conftest import FAST
from tests.harness.app import running_api
from tests.harness.client import Api, Frame
from tests.pg_server import PgServer

pytestmark = pytest.mark.postgres_only

# The contract's bound. With the default poll interval (0.5 s), even a lost NOTIFY stays within it.
CROSS_INSTANCE_SECONDS = 1.0


@pytest.mark.through_pgbouncer  # LISTEN straight to PostgreSQL, writes through PgBouncer
async def test_a_write_on_one_instance_reaches_a_stream_on_another_within_a_second(
    backend: Backend, tmp_path: Path
) -> None:
    # Default poll interval: the NOTIFY path is what is measured, the poll is only its fallback.
    settings = make_settings(backend, tmp_path, event_keep_alive_seconds=0.2)
    async with (
        running_api(backend, settings, real_socket=True) as writer,
        running_api(backend, settings, real_socket=True) as reader,
    ):
        user = new_user()
        async with reader.stream(user) as stream:
            thread = await writer.create_thread(user)
            for n in range(10):
                message = await writer.append(user, thread["id"], f"m{n}")
                committed = time.monotonic()
                frame = await stream.event()
                assert frame is not None
                if frame.event == "thread.created":
                    frame = await stream.event()
                    assert frame is not None
                assert frame.data == message
                assert frame.received - committed < CROSS_INSTANCE_SECONDS


@pytest.mark.through_pgbouncer  # LISTEN straight to PostgreSQL, writes through PgBouncer
async def test_delivery_across_instances_survives_a_lost_listen_connection(backend: Backend, tmp_path: Path) -> None:
    """The reader's LISTEN connection is killed: notifications are lost until it reconnects, and the poll
    still brings the other instance's writes within the bound."""
    assert backend.dsn is not None
    reader_name = f"{APP_NAME}-reader"
    writer_settings = make_settings(backend, tmp_path, event_keep_alive_seconds=0.2)
    reader_settings = make_settings(backend, tmp_path, application_name=reader_name)
    async with (
        running_api(backend, writer_settings, real_socket=True) as writer,
        running_api(backend, reader_settings, real_socket=True) as reader,
    ):
        user = new_user()
        async with reader.stream(user) as stream:
            for n in range(5):
                await execute_sql(
                    backend.dsn,
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    f" WHERE application_name = '{reader_name}' AND query LIKE 'LISTEN%'",
                )
                thread = await writer.create_thread(user, title=f"t{n}")
                committed = time.monotonic()
                frame = await stream.event()
                assert frame is not None and frame.data == thread
                assert frame.received - committed < CROSS_INSTANCE_SECONDS


async def _write_until_accepted(api: Api, user: str, thread_id: str, content: str) -> dict[str, Any]:
    """Right after a restart the first requests may be refused (503): a client retries them."""
    for _ in range(100):
        try:
            response = await api.request(
                "POST",
                f"/api/threads/{thread_id}/messages",
                user=user,
                json={"content": content},
                headers={"Idempotency-Key": f"{thread_id}-{content}"},
            )
        except httpx.HTTPError:
            response = None
        if response is not None and response.status_code == 201:
            message: dict[str, Any] = response.json()
            return message
        await asyncio.sleep(0.1)
    raise AssertionError("the server did not accept writes after the database restart")


@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_a_stream_open_across_a_database_restart_resumes_without_loss(
    backend: Backend, private_pg: PgServer, tmp_path: Path, mode: str
) -> None:
    del backend  # only to run once, on the PostgreSQL side of the matrix
    async with (
        fresh_database("postgresql", private_pg, tmp_path) as fresh,
        running_api(fresh, make_settings(fresh, tmp_path, **FAST), real_socket=True) as api,
    ):
        user = new_user()
        thread = await api.create_thread(user)
        before = [await api.append(user, thread["id"], f"before-{n}") for n in range(3)]
        received: list[Frame] = []
        async with api.stream(user, last_event_id=0) as stream:
            received += await stream.events(4)
            await asyncio.to_thread(private_pg.pg_ctl_stop, mode)
            await asyncio.sleep(0.5)  # the app runs meanwhile: its hub, publisher and listener fail
            await asyncio.to_thread(private_pg.pg_ctl_start)
            after = [await _write_until_accepted(api, user, thread["id"], f"after-{n}") for n in range(3)]
            while len(received) < 7 and (frame := await stream.event()) is not None:
                received.append(frame)
        if len(received) < 7:  # the server ended the stream: resume from the last id, as a client does
            async with api.stream(user, last_event_id=received[-1].id) as resumed:
                received += await resumed.events(7 - len(received))
    assert [f.data for f in received] == [thread, *before, *after]
    ids = [f.id for f in received]
    assert ids == sorted(set(ids))  # type: ignore[type-var]
