"""The threadstore side: a real server on its own database, the conversation appended through the HTTP API
as a chat app does it (one user message and one assistant message per turn, over one client)."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import measure
import words
from results import Run
from servers import Server, free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "bin" / "python"
USER = "u1"


class AsyncpgProbe:
    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection

    async def value(self, sql: str) -> Any:
        return await self.connection.fetchval(sql)

    async def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return [tuple(record) for record in await self.connection.fetch(sql)]


class ThreadstoreSystem:
    def __init__(self, client: httpx.AsyncClient, thread_id: str, probe: AsyncpgProbe, constant_reply: bool) -> None:
        self.client = client
        self.thread_id = thread_id
        self.probe = probe  # its own connection: the server's pool is the one measured
        self.constant_reply = constant_reply

    async def append_turn(self, turn: int) -> None:
        await self._append("user", words.user_message(turn))
        await self._append("assistant", words.assistant_reply(turn, self.constant_reply))

    async def _append(self, role: str, content: str) -> None:
        response = await self.client.post(
            f"/api/threads/{self.thread_id}/messages", json={"role": role, "content": content}
        )
        response.raise_for_status()

    async def last_messages(self, count: int) -> list[str]:
        response = await self.client.get(
            f"/api/threads/{self.thread_id}/messages", params={"order": "desc", "limit": count}
        )
        response.raise_for_status()
        return [message["content"] for message in reversed(response.json()["data"])]


def measure_threadstore(
    sqlalchemy_url: str, dsn: str, turns: int, checkpoints: list[int], constant_reply: bool, workdir: Path
) -> Run:
    run = Run("threadstore")
    run.info["versions"] = f"threadstore {version('threadstore')}"
    run.info["setup"] = (
        "python -m threadstore serve (1 worker, production defaults), migrated at start; two POSTs per turn"
        " over one httpx.AsyncClient; read = GET ?order=desc&limit=50"
    )
    env = server_environment(sqlalchemy_url)
    token = subprocess.run(
        [str(PYTHON), "-m", "threadstore", "token", "--user", USER],
        env=env, cwd=workdir, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    with serving(env, workdir) as server:
        return asyncio.run(_converse(server.url, token, dsn, run, turns, checkpoints, constant_reply))


async def _converse(
    url: str, token: str, dsn: str, run: Run, turns: int, checkpoints: list[int], constant_reply: bool
) -> Run:
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=60) as client:
        created = await client.post("/api/threads", json={"title": "LangGraph comparison"})
        created.raise_for_status()
        probe = await asyncpg.connect(dsn)
        try:
            system = ThreadstoreSystem(client, created.json()["id"], AsyncpgProbe(probe), constant_reply)
            return await measure.run(system, run, turns, checkpoints, constant_reply)
        finally:
            await probe.close()


def child_environment() -> dict[str, str]:
    """This environment without PYTHONPATH (run sets it to bench/ for this process only: in the LangGraph
    virtualenv, bench/langgraph/ would join the `langgraph` namespace package) and without THREADSTORE_*."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("THREADSTORE_")}


def server_environment(sqlalchemy_url: str) -> dict[str, str]:
    # Only what must be given, and quieter logs; a developer's THREADSTORE_* settings do not leak in, and the
    # working folder is bench/out, so no .env changes what is measured either.
    return {
        **child_environment(),
        "THREADSTORE_DATABASE_URL": sqlalchemy_url,
        "THREADSTORE_JWT_SECRET": secrets.token_urlsafe(48),
        "THREADSTORE_LOG_LEVEL": "WARNING",
    }


@contextmanager
def serving(env: dict[str, str], workdir: Path) -> Iterator[Server]:
    """A threadstore server (migrating its empty database at start), ready on /healthz, stopped after."""
    port = free_port()
    log = workdir / "threadstore.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            [str(PYTHON), "-m", "threadstore", "serve", "--port", str(port)],
            env=env, cwd=workdir, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    server = Server("threadstore", process, port, log)
    try:
        server.wait_ready("/healthz")
        yield server
    finally:
        server.stop()
