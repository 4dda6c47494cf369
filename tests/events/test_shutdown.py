"""Stopping the server (SIGTERM, as a process manager does) ends open event streams cleanly and at once,
instead of holding shutdown for the graceful timeout and then cutting them off."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.conftest import JWT_SECRET, Backend, new_user
from tests.events.conftest import EventStream, auth


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_sigterm_ends_open_streams_cleanly(backend: Backend, tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("THREADSTORE_")}
    env.update(
        THREADSTORE_DATABASE_URL=backend.url,
        THREADSTORE_JWT_SECRET=JWT_SECRET,
        THREADSTORE_DATA_DIR=str(tmp_path),
        THREADSTORE_LOG_LEVEL="WARNING",
    )
    command = [sys.executable, "-m", "threadstore.cli", "serve", "--port", str(port), "--no-migrate"]
    process = subprocess.Popen(command, env=env, cwd=tmp_path)  # noqa: ASYNC220 (started once, not awaited)
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(10.0, read=None)) as client:
            for _ in range(300):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.05)
            async with client.stream("GET", "/api/events", headers=auth(new_user())) as response:
                assert response.status_code == 200
                stream = EventStream(response)
                assert (await stream.frame()) is not None  # open and registered
                asked = time.monotonic()
                process.send_signal(signal.SIGTERM)
                assert await stream.frame() is None  # the response ended properly (a clean chunked end)
                ended = time.monotonic() - asked
        # uvicorn re-raises the signal once it has shut down, so the process ends "killed by SIGTERM".
        assert process.wait(timeout=20) in (0, -signal.SIGTERM)
        assert ended < 5.0, ended  # well before the 10 s graceful timeout would have cut it off
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
