"""What slow event streams cost a real `threadstore serve` process (issue 14, finding 1): clients that resume
from an old Last-Event-ID over large events and then stop reading hold a bounded amount of the server's
memory, and it is released when they leave — without waiting for a garbage collection.

Measured through /proc (VmRSS), after glibc's malloc_trim (tests/harness/processes.py `trim_memory`), so the
figure is what the process holds rather than the free blocks the allocator keeps for reuse. One database:
PostgreSQL when there is one (production's), else SQLite; the catch-up code is the same on both.
"""

from __future__ import annotations

import asyncio
import ctypes
import re
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness.client import Api
from tests.harness.databases import Backend, fresh_database, new_user
from tests.harness.processes import ServeProcess
from tests.pg_server import PgServer

MIB = 1024 * 1024
STREAMS = 10
THREADS = 6
EVENTS = 300  # message.created events of CONTENT characters each (and one thread.created per thread)
CONTENT = 100_000
# Before the pages were bounded by bytes, each stream held its first page — every event here, 30 MB — while
# its client did not read, and again until a collection after it left: +300 MiB for these ten.
BOUND = 100 * MIB


def _glibc() -> bool:
    return sys.platform == "linux" and hasattr(ctypes.CDLL(None), "malloc_trim")


pytestmark = pytest.mark.skipif(not _glibc(), reason="VmRSS and malloc_trim: Linux with glibc")


@pytest.fixture
async def database(pg_server: PgServer | None, tmp_path: Path) -> AsyncIterator[Backend]:
    async with fresh_database("postgresql" if pg_server else "sqlite", pg_server, tmp_path) as backend:
        yield backend


async def test_slow_streams_over_large_events_cost_bounded_memory_released_when_they_close(
    database: Backend, tmp_path: Path
) -> None:
    async with ServeProcess(tmp_path, database, args=["--no-migrate"], trimmable=True) as server:
        user = new_user()
        await _seed(server.api, user)
        baseline = await _settled_rss(server)

        stalled = [await _stalled_stream(server.port, server.api.auth(user)) for _ in range(STREAMS)]
        assert await _open_streams(server.api) == STREAMS
        await asyncio.sleep(1.0)  # each server side sends until its socket is full, then waits on it
        while_stalled = await _settled_rss(server)

        for sock in stalled:
            sock.close()
        for _ in range(200):  # the server sees the disconnects
            if await _open_streams(server.api) == 0:
                break
            await asyncio.sleep(0.05)
        assert await _open_streams(server.api) == 0
        after = await _settled_rss(server)
        log = server.log()

    print(
        f"\n{database.name}: RSS baseline {baseline / MIB:.1f} MiB, with {STREAMS} stalled streams "
        f"+{(while_stalled - baseline) / MIB:.1f} MiB, after they closed +{(after - baseline) / MIB:.1f} MiB"
    )
    assert while_stalled - baseline < BOUND
    assert after - baseline < BOUND
    assert "never retrieved" not in log and "Traceback" not in log, log[-3000:]


async def _seed(api: Api, user: str) -> None:
    """EVENTS large messages over THREADS threads, written concurrently (one thread's appends queue)."""
    threads = [await api.create_thread(user) for _ in range(THREADS)]

    async def fill(thread_id: str, count: int) -> None:
        for n in range(count):
            await api.append(user, thread_id, f"{n:06d}" + "x" * (CONTENT - 6))

    await asyncio.gather(*(fill(t["id"], EVENTS // THREADS) for t in threads))


async def _stalled_stream(port: int, auth: dict[str, str]) -> socket.socket:
    """`GET /api/events` resumed from the start, by a client that reads the response headers and then nothing:
    a small receive buffer, so the server is soon left waiting to send (as it would on a slow network)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)  # before connect: no autotuning
    sock.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(sock, ("127.0.0.1", port))
    headers = {"Host": "t", **auth, "Last-Event-ID": "0"}
    request = "GET /api/events HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items()) + "\r\n"
    await loop.sock_sendall(sock, request.encode())
    head = await asyncio.wait_for(loop.sock_recv(sock, 1024), 20)
    assert head.startswith(b"HTTP/1.1 200"), head
    return sock


async def _open_streams(api: Api) -> int:
    metrics = (await api.client.get("/metrics")).text
    found = re.search(r"^threadstore_event_streams (\S+)$", metrics, re.MULTILINE)
    assert found, "no threadstore_event_streams gauge"
    return int(float(found.group(1)))


async def _settled_rss(server: ServeProcess) -> int:
    """RSS after the allocator gave back what it can: the least of a few readings after trims."""
    readings = []
    for _ in range(3):
        server.trim_memory()
        await asyncio.sleep(0.1)
        readings.append(server.rss_bytes())
    return min(readings)
