"""An unreachable database: /healthz stays 200, /readyz and the API answer 503 with Retry-After."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.conftest import Api, Backend
from tests.http.problems import assert_problem


@pytest.fixture
def settings_overrides(backend: Backend) -> dict[str, Any]:
    if backend.is_postgres:
        # Nothing listens on port 1: every connection attempt is refused at once.
        return {"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere", "connect_timeout": 1.0}
    return {"database_url": f"sqlite+aiosqlite:////nonexistent-{uuid.uuid4().hex}/threadstore.db"}


async def test_healthz_is_200_without_a_database(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200


async def test_readyz_is_503_with_retry_after(api: Api) -> None:
    response = await api.client.get("/readyz")
    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) >= 1


@pytest.mark.parametrize(("method", "path"), [("GET", "/api/threads"), ("POST", "/api/threads")])
async def test_api_calls_are_503_with_retry_after_and_no_driver_text(
    api: Api, user: str, method: str, path: str
) -> None:
    kwargs: dict[str, Any] = {"json": {"title": "x"}} if method == "POST" else {}
    response = await api.request(method, path, user=user, **kwargs)
    assert_problem(response, 503)
    assert int(response.headers["retry-after"]) >= 1
    for leak in ["127.0.0.1", "nonexistent", "refused", "asyncpg", "sqlite", "OSError", "Errno"]:
        assert leak.lower() not in response.text.lower(), (leak, response.text)
