"""The Python client (clients/python) against a real `threadstore serve` on each backend: one server per
module and backend (the endpoint tests), or one per test where a test kills it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests.harness.databases import JWT_SECRET, Backend, new_user
from tests.harness.processes import ServeProcess
from threadstore.auth import issue_token
from threadstore_client import AsyncClient, Client, RetryPolicy

# Patient enough to outlast a SIGKILLed server's restart on a busy machine (about 30 s of tries in all).
PATIENT = RetryPolicy(attempts=20, initial=0.1, cap=2.0)
# Keep-alives and polls fast, so a stream that reconnects catches up at once.
FAST = {"event_keep_alive_seconds": 0.5, "event_poll_interval_seconds": 0.2}

Clients = Callable[..., Client]


def token_of(user: str) -> str:
    return issue_token(JWT_SECRET, user, None)


@pytest.fixture(scope="module")
async def server(backend: Backend, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ServeProcess]:
    async with ServeProcess(tmp_path_factory.mktemp("serve"), backend, settings=FAST, args=["--no-migrate"]) as served:
        yield served


@pytest.fixture
def user() -> str:
    return new_user()


@pytest.fixture
def client(server: ServeProcess, user: str) -> Iterator[Client]:
    with Client(server.base_url, token_of(user), retry=PATIENT) as made:
        yield made


@pytest.fixture
async def aclient(server: ServeProcess, user: str) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(server.base_url, token_of(user), retry=PATIENT) as made:
        yield made


@pytest.fixture
async def killable(backend: Backend, tmp_path: Path) -> AsyncIterator[ServeProcess]:
    """A server of the test's own, which it may SIGKILL and restart."""
    async with ServeProcess(tmp_path / "serve", backend, settings=FAST, args=["--no-migrate"]) as served:
        yield served
