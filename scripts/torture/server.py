"""A `threadstore serve` subprocess that can be SIGKILLed and restarted on the same port and database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path

import httpx

JWT_SECRET = "torture-secret-" + "t" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One server process. `kill()` is SIGKILL (no shutdown hooks, no graceful drain); `start()` after it is a
    restart on the same port, database and settings, as an operator's supervisor would do."""

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        *,
        isolation_level: str = "READ COMMITTED",
        application_name: str = "threadstore-torture",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.isolation_level = isolation_level
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.starts = 0
        self.kills = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._env = {key: value for key, value in os.environ.items() if not key.startswith("THREADSTORE_")}
        self._env.update(
            {
                "THREADSTORE_DATABASE_URL": database_url,
                "THREADSTORE_JWT_SECRET": JWT_SECRET,
                "THREADSTORE_DATA_DIR": str(workdir),
                "THREADSTORE_ISOLATION_LEVEL": isolation_level,
                "THREADSTORE_APPLICATION_NAME": application_name,
                "THREADSTORE_LOG_LEVEL": "WARNING",
                # Two shared cores run this, other test runs and the database: a burst of 40 clients may wait
                # longer than production's 5 s for a pooled connection. The invariants do not depend on it.
                "THREADSTORE_POOL_TIMEOUT": "30",
                "PYTHONUNBUFFERED": "1",
            }
        )
        self._env.update(extra_env or {})

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    async def start(self, within: float = 90.0) -> None:
        assert not self.running
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # cwd is the work folder so no `.env` of the checkout leaks into the server's settings.
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "threadstore",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                cwd=self.workdir,
                env=self._env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.starts += 1
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=2.0) as client:
            while True:
                if self._proc.returncode is not None:
                    raise RuntimeError(f"the server exited with {self._proc.returncode}; see {self.log_path}")
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{self.base_url}/healthz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not answer /healthz within {within} s; see {self.log_path}")
                await asyncio.sleep(0.05)

    async def kill(self) -> None:
        """SIGKILL: the process dies between any two instructions, mid-transaction or mid-commit."""
        proc = self._proc
        assert proc is not None and proc.returncode is None
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        self.kills += 1

    async def stop(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 20)
        except TimeoutError:
            proc.send_signal(signal.SIGKILL)
            await proc.wait()

    async def wait_ready(self, within: float = 60.0) -> None:
        """Until /readyz answers 200: the server reaches the database (after a restart of PostgreSQL, too)."""
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(f"{self.base_url}/readyz")).status_code == 200:
                        return
                if time.monotonic() > deadline:
                    raise RuntimeError("the server did not become ready")
                await asyncio.sleep(0.1)

    async def retries(self) -> float:
        """The server's count of units of work re-run after 40001/40P01 (its Prometheus counter)."""
        async with httpx.AsyncClient(timeout=10.0) as client:
            text = (await client.get(f"{self.base_url}/metrics")).text
        for line in text.splitlines():
            if line.startswith("threadstore_db_transaction_retries_total "):
                return float(line.split()[1])
        return 0.0
