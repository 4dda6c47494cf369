"""Stopping the server (SIGTERM, as a process manager does) ends open event streams cleanly and at once,
instead of holding shutdown for the graceful timeout and then cutting them off."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from tests.conftest import Backend, new_user
from tests.harness.processes import ServeProcess

pytestmark = pytest.mark.through_pgbouncer


async def test_sigterm_ends_open_streams_cleanly(backend: Backend, tmp_path: Path) -> None:
    async with (
        ServeProcess(tmp_path, backend, args=["--no-migrate"]) as server,
        server.api.stream(new_user()) as stream,  # open and registered
    ):
        asked = time.monotonic()
        server.send_signal(signal.SIGTERM)
        assert await stream.frame() is None  # the response ended properly (a clean chunked end)
        ended = time.monotonic() - asked
        # uvicorn re-raises the signal once it has shut down, so the process ends "killed by SIGTERM".
        assert await server.wait() in (0, -signal.SIGTERM)
    assert ended < 5.0, ended  # well before the 10 s graceful timeout would have cut it off
