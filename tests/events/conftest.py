"""Event stream tests read `GET /api/events` over TCP: here `api` is served by uvicorn on a real socket."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness.app import running_api
from tests.harness.client import Api
from tests.harness.databases import Backend, make_settings

# Keep-alives and polls fast enough that a test waiting for either is quick.
FAST = {"event_keep_alive_seconds": 0.2, "event_poll_interval_seconds": 0.2}


@pytest.fixture
async def api(backend: Backend, tmp_path: Path, settings_overrides: dict[str, Any]) -> AsyncIterator[Api]:
    settings = make_settings(backend, tmp_path, **{**FAST, **settings_overrides})
    async with running_api(backend, settings, real_socket=True) as served:
        yield served
