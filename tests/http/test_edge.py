"""Limits at the HTTP edge, against `threadstore serve` as shipped: what a hostile client can hold before the
app runs. Raw sockets, because the point is what a client that does not speak HTTP properly gets.

A refusal at the edge may be a bare answer (431, 408) or a closed connection: these tests accept either,
and require that the connection ends within the configured time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence

import pytest

from tests.conftest import new_user
from tests.harness.processes import ServeProcess
from tests.http.problems import assert_problem

HEADER_TIMEOUT = 1.0
KEEP_ALIVE_TIMEOUT = 1
SLACK = 1.0  # scheduling on a loaded 2-core machine; the limits are seconds, the slack is not a tolerance of them
SLOW_CLIENTS = 200
MAX_CONNECTIONS = SLOW_CLIENTS + 50
TIMED_OUT = b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"


@pytest.fixture(scope="module")
async def server(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServeProcess]:
    """Short timeouts, default sizes and a connection limit above what the slow-client test opens."""
    settings = {
        "header_timeout_seconds": HEADER_TIMEOUT,
        "keep_alive_timeout_seconds": KEEP_ALIVE_TIMEOUT,
        "max_connections": MAX_CONNECTIONS,
    }
    async with ServeProcess(tmp_path_factory.mktemp("edge"), settings=settings) as started:
        yield started


class Connection:
    """One raw TCP connection to the server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, server: ServeProcess) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", server.port))

    async def send(self, data: bytes) -> None:
        with contextlib.suppress(ConnectionError):  # the server may refuse before it has read everything
            self.writer.write(data)
            await self.writer.drain()

    async def until_closed(self, within: float) -> bytes:
        """Everything the server sent until it closed the connection (a reset counts as closed); TimeoutError
        if it is still open after `within` seconds."""
        received = bytearray()
        async with asyncio.timeout(within):
            while True:
                try:
                    chunk = await self.reader.read(65536)
                except ConnectionError:
                    chunk = b""
                if not chunk:
                    self.close()
                    return bytes(received)
                received += chunk

    async def response(self) -> tuple[int, bytes]:
        """Reads one response with a Content-Length body, leaving the connection open."""
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 10)
        status = int(head.split(b" ", 2)[1])
        length = next(
            int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        return status, await asyncio.wait_for(self.reader.readexactly(length), 10)

    def close(self) -> None:
        self.writer.close()


def request(path: str = "/healthz", headers: Sequence[tuple[str, str]] = ()) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{name}: {value}" for name, value in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def refused(answer: bytes, status: int) -> bool:
    """Closed without an answer, or answered `status` (bare, before the app ran)."""
    return answer == b"" or answer.startswith(f"HTTP/1.1 {status} ".encode())


async def test_a_header_of_64_kib_is_refused(server: ServeProcess) -> None:
    connection = await Connection.open(server)
    await connection.send(request(headers=[("X-Padding", "a" * 64 * 1024)]))
    answer = await connection.until_closed(within=5)
    assert refused(answer, 431), answer[:200]
    served = await Connection.open(server)  # the server itself is fine
    await served.send(request())
    assert (await served.response())[0] == 200
    served.close()


async def test_headers_within_the_default_size_are_served(server: ServeProcess) -> None:
    connection = await Connection.open(server)
    await connection.send(request(headers=[("X-Padding", "a" * 8 * 1024)] + [(f"X-H{i}", "v") for i in range(50)]))
    status, _ = await connection.response()
    connection.close()
    assert status == 200


async def test_too_many_headers_are_refused(server: ServeProcess) -> None:
    connection = await Connection.open(server)
    await connection.send(request(headers=[(f"X-H{i}", "v") for i in range(150)]))
    answer = await connection.until_closed(within=5)
    assert refused(answer, 431), answer[:200]


async def test_half_sent_requests_are_closed_within_the_header_timeout(server: ServeProcess) -> None:
    """Slowloris: 200 connections that send half a request line, and one that sends nothing at all."""
    connections = [await Connection.open(server) for _ in range(SLOW_CLIENTS)]
    silent = await Connection.open(server)
    started = time.monotonic()
    await asyncio.gather(*(c.send(b"GET /api/thr") for c in connections))
    answers = await asyncio.gather(*(c.until_closed(within=HEADER_TIMEOUT + SLACK) for c in [*connections, silent]))
    elapsed = time.monotonic() - started
    assert all(refused(answer, 408) for answer in answers), {a[:40] for a in answers}
    assert elapsed >= HEADER_TIMEOUT * 0.9, elapsed  # closed by the timeout, not by something sooner


async def test_a_request_trickled_slower_than_the_header_timeout_is_closed(server: ServeProcess) -> None:
    """Bytes arriving now and then do not extend the time a request's headers may take."""
    connection = await Connection.open(server)

    async def trickle() -> None:
        for byte in request():
            await connection.send(bytes([byte]))
            await asyncio.sleep(0.1)  # the whole request would take 4 s

    trickling = asyncio.create_task(trickle())
    try:
        answer = await connection.until_closed(within=HEADER_TIMEOUT + SLACK)
    finally:
        trickling.cancel()
    assert refused(answer, 408), answer[:200]


async def test_an_idle_keep_alive_connection_is_closed(server: ServeProcess) -> None:
    connection = await Connection.open(server)
    await connection.send(request())
    assert (await connection.response())[0] == 200
    answered = time.monotonic()
    assert await connection.until_closed(within=KEEP_ALIVE_TIMEOUT + SLACK) == b""
    assert time.monotonic() - answered >= KEEP_ALIVE_TIMEOUT * 0.9


async def test_a_kept_alive_connection_serves_the_next_request(server: ServeProcess) -> None:
    """The header timeout counts from a request's first byte, not from when the connection opened."""
    connection = await Connection.open(server)
    for _ in range(2):
        await asyncio.sleep(HEADER_TIMEOUT * 0.6)  # together longer than the header timeout
        await connection.send(request())
        assert (await connection.response())[0] == 200
    connection.close()


async def test_connections_beyond_the_maximum_are_closed_at_once(server: ServeProcess) -> None:
    """Those within the limit wait for their header timeout (408); those beyond it are closed unanswered."""
    await asyncio.sleep(0.1)  # the connections of the tests before are gone
    connections = [await Connection.open(server) for _ in range(MAX_CONNECTIONS + 5)]
    answers = await asyncio.gather(*(c.until_closed(within=HEADER_TIMEOUT + SLACK) for c in connections))
    assert sorted(answers) == [b""] * 5 + [TIMED_OUT] * MAX_CONNECTIONS, {a[:40] for a in answers}
    served = await Connection.open(server)  # the limit counts open connections: closing them frees it
    await served.send(request())
    assert (await served.response())[0] == 200
    served.close()


async def test_a_trailing_slash_is_404_and_never_redirects_to_the_host_header(server: ServeProcess) -> None:
    """Starlette's slash redirect built an absolute URL from the Host header: a redirect anyone could aim."""
    user = new_user()
    for path in ["/api/threads/", "/healthz/", "/api/threads/thr_x/"]:
        response = await server.api.request("GET", path, user=user, headers={"Host": "evil.example"})
        assert "location" not in response.headers, response.headers
        assert_problem(response, 404)
