"""A minimal HTTP/1.1 client on asyncio streams, for the streaming scenario (bench/streaming.py): one keep-alive
connection per reply and one Server-Sent Events stream per watcher. httpx costs the client ~10x more CPU per
request, and the client shares the 2 cores with the server it measures: at a few thousand requests and events
per second the client would then be what is measured."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

HEAD_LIMIT = 64 * 1024


class HttpError(Exception):
    """The connection broke or the answer could not be read: the connection is unusable."""


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _request_bytes(method: str, host: str, path: str, token: str, body: bytes | None, accept: str) -> bytes:
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Authorization: Bearer {token}", f"Accept: {accept}"]
    if body is not None:
        head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + (body or b"")


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as error:
        raise HttpError(f"no answer: {error!r}") from error
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def _read_chunk(reader: asyncio.StreamReader) -> bytes:
    """One chunk of a chunked body; b"" at its end."""
    size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
    data = await reader.readexactly(size + 2)
    return data[:-2]


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    try:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while chunk := await _read_chunk(reader):
                parts.append(chunk)
            await reader.readuntil(b"\r\n")  # the empty trailer
            return b"".join(parts)
        return await reader.readexactly(int(headers.get("content-length", "0")))
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError, ValueError) as error:
        raise HttpError(f"body cut: {error!r}") from error


class Connection:
    """One keep-alive connection; requests one at a time."""

    def __init__(self, url: str, token: str) -> None:
        self.host, self.port = _address(url)
        self.token = token
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def request(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        """(status, body). Raises HttpError when the connection broke; the next request opens a new one."""
        if self._streams is None:
            try:
                self._streams = await asyncio.open_connection(self.host, self.port, limit=HEAD_LIMIT)
            except OSError as error:
                raise HttpError(f"cannot connect: {error!r}") from error
        reader, writer = self._streams
        try:
            writer.write(_request_bytes(method, self.host, path, self.token, body, "application/json"))
            status, headers = await _read_head(reader)
            data = await _read_body(reader, headers)
        except BaseException:
            self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return status, data

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


@dataclass(frozen=True)
class Event:
    type: str
    data: bytes


class EventStream:
    """`GET /api/events` read as Server-Sent Events. `open` returns once the server sent its first frame (the
    stream is subscribed from then on)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._buffer = b""

    @classmethod
    async def open(cls, url: str, path: str, token: str) -> EventStream:
        host, port = _address(url)
        reader, writer = await asyncio.open_connection(host, port, limit=HEAD_LIMIT)
        writer.write(_request_bytes("GET", host, path, token, None, "text/event-stream"))
        status, headers = await _read_head(reader)
        if status != 200:
            body = await _read_body(reader, headers)
            writer.close()
            raise HttpError(f"GET {path} answered {status}: {body[:200]!r}")
        stream = cls(reader, writer)
        stream._buffer = await _read_chunk(reader)  # ": connected"
        return stream

    async def events(self) -> AsyncIterator[tuple[float, list[Event]]]:
        """(arrival time on the loop's clock, the events of that chunk) until the stream ends."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                chunk = await _read_chunk(self._reader)
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError) as error:
                raise HttpError(f"stream cut: {error!r}") from error
            if not chunk:
                return
            arrived = loop.time()
            self._buffer += chunk
            *frames, self._buffer = self._buffer.split(b"\n\n")
            found = []
            for frame in frames:
                kind, data = "message", b""
                for line in frame.split(b"\n"):
                    if line.startswith(b"event: "):
                        kind = line[7:].decode()
                    elif line.startswith(b"data: "):
                        data = line[6:]
                if data:
                    found.append(Event(kind, data))
            if found:
                yield arrived, found

    def close(self) -> None:
        self._writer.close()
