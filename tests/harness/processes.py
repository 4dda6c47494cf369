"""Real `threadstore` processes: `ServeProcess` for servers, `threadstore_env` and `THREADSTORE` for the
one-shot commands (`migrate`, `token`)."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

import httpx

from tests.harness.client import Api
from tests.harness.databases import APP_NAME, JWT_SECRET, Backend
from threadstore.config import Settings

THREADSTORE = (sys.executable, "-m", "threadstore")

# Run in the child before threadstore: the kernel SIGKILLs the server when the process that started it
# dies, however it dies (pytest killed by `timeout` included), so no server outlives its test run holding
# a port and database connections. Checking the parent after prctl closes the window in which it died first.
_LAUNCH_ORPHAN_PROOF = (
    "import ctypes, os, signal, sys\n"
    "ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(1)\n"
    "os.execv(sys.executable, [sys.executable, '-m', 'threadstore', *sys.argv[2:]])\n"
)
# The same, for a server whose memory a test measures: threadstore runs in the launcher's interpreter, where
# SIGUSR1 calls glibc's malloc_trim(0) first, so the test reads what the process holds rather than the freed
# blocks the allocator keeps for reuse (`ServeProcess.trim_memory`).
_LAUNCH_TRIMMABLE = (
    "import ctypes, os, runpy, signal, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG\n"
    "if os.getppid() != int(sys.argv[1]):\n"
    "    os._exit(1)\n"
    "signal.signal(signal.SIGUSR1, lambda *_: libc.malloc_trim(0))\n"
    "sys.argv = ['threadstore', *sys.argv[2:]]\n"
    "runpy.run_module('threadstore', run_name='__main__', alter_sys=True)\n"
)


def threadstore_env(
    workdir: Path,
    *,
    database_url: str | None = None,
    jwt_secret: str | None = JWT_SECRET,
    settings: Mapping[str, object] | None = None,
) -> dict[str, str]:
    """The environment of a `threadstore` command. This process's own THREADSTORE_* variables are dropped
    (a developer's settings must not leak in); the data folder is workdir/data. Without a database URL the
    command uses the SQLite default there, without a secret the one it generates there, as a user meets it.
    `settings` are Settings fields: {"pool_size": 5} is THREADSTORE_POOL_SIZE=5."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("THREADSTORE_")}
    env["THREADSTORE_DATA_DIR"] = str(workdir / "data")
    if database_url is not None:
        env["THREADSTORE_DATABASE_URL"] = database_url
    if jwt_secret is not None:
        env["THREADSTORE_JWT_SECRET"] = jwt_secret
    for name, value in (settings or {}).items():
        env[f"THREADSTORE_{name.upper()}"] = str(value)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """One `threadstore serve` process on a port of its own, started as an operator would (it migrates the
    schema first unless `--no-migrate` is in `args`). Several may share one database. `kill()` is SIGKILL,
    `terminate()` SIGTERM, and `start()` after either (or `restart()`) brings it back on the same port and
    settings, as a supervisor does. `api` is a client of it.

    As an async context manager it is started on entry and terminated on exit; whatever is still running
    when the test process exits is SIGKILLed, and the kernel kills it if the test process dies unannounced.
    Start it from the event loop's thread: the kernel ties the server's life to the thread that started it.

    The default application_name is this run's plus "-serve": a server process's connections are not the
    in-process apps', whose leak check must not see them."""

    def __init__(
        self,
        workdir: Path,
        backend: Backend | None = None,
        *,
        settings: Mapping[str, object] | None = None,
        jwt_secret: str | None = JWT_SECRET,
        args: Sequence[str] = (),
        trimmable: bool = False,
    ) -> None:
        """`trimmable`: `trim_memory()` works (Linux with glibc only)."""
        self.workdir = workdir
        self.trimmable = trimmable
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.args = list(args)
        defaults: dict[str, object] = {"application_name": f"{APP_NAME}-serve", "log_level": "WARNING"}
        if backend is not None:  # through PgBouncer: its pool mode and the direct URL too
            defaults.update({k: v for k, v in backend.settings().items() if k != "database_url"})
        # What it runs with; a change (a fake LLM's THREADSTORE_LLM_* variables, say) counts from the next start.
        self.env = threadstore_env(
            workdir,
            database_url=backend.url if backend else None,
            jwt_secret=jwt_secret,
            settings={**defaults, **(settings or {})},
        )
        self.env["PYTHONUNBUFFERED"] = "1"  # the log is read by tests, also after a SIGKILL
        self.backend = backend or Backend("sqlite", _default_database_url(workdir))
        self.jwt_secret = jwt_secret
        self.log_path = workdir / f"serve-{self.port}.log"
        self.starts = 0
        self.kills = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._api: Api | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        assert self._process is not None, "the server was never started"
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        return None if self._process is None else self._process.poll()

    @property
    def api(self) -> Api:
        """A client of this server; it survives kills and restarts (the port stays the same)."""
        if self._api is None:
            # A generated secret exists once the server started: it is read then, not at construction.
            secret = self.jwt_secret or (self.workdir / "data" / "jwt-secret").read_text().strip()
            client = httpx.AsyncClient(base_url=self.base_url, timeout=30.0)
            self._api = Api(client, self.backend, self.base_url, real_socket=True, jwt_secret=secret)
        return self._api

    def rss_bytes(self) -> int:
        """The server's resident memory now (VmRSS in /proc: Linux only)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS in /proc/PID/status")

    def trim_memory(self) -> None:
        """Asks a `trimmable` server to give its allocator's free blocks back (it does so in a moment)."""
        assert self.trimmable, "start the server with trimmable=True"
        self.send_signal(signal.SIGUSR1)

    def log(self) -> str:
        """What the server wrote to stdout and stderr, across all its starts."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    async def start(self, within: float = 90.0) -> None:
        """Starts the server and returns once /healthz answers (after the migration, unless --no-migrate)."""
        assert not self.running, "the server is running"
        self.workdir.mkdir(parents=True, exist_ok=True)
        serve = ["serve", "--host", "127.0.0.1", "--port", str(self.port), *self.args]
        if sys.platform == "linux":
            launcher = _LAUNCH_TRIMMABLE if self.trimmable else _LAUNCH_ORPHAN_PROOF
            command = [sys.executable, "-c", launcher, str(os.getpid()), *serve]
        else:
            command = [*THREADSTORE, *serve]
        with self.log_path.open("ab") as log:
            # A session of its own: a Ctrl-C at the terminal reaches the test run, which then stops the server
            # itself; kill() reaches the whole group (the workers of --workers N too). cwd is the work folder so
            # no `.env` of the checkout leaks into the settings. Popen, not asyncio's: the process is bound to
            # no event loop, so the exit hook can kill it. It returns once the child exists.
            self._process = subprocess.Popen(  # noqa: ASYNC220
                command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        _started.add(self)
        self.starts += 1
        await self._until(lambda client: _answers(client, f"{self.base_url}/healthz"), within, "answer /healthz")

    async def wait_ready(self, within: float = 60.0) -> None:
        """Until /readyz answers 200: the server reaches its database (again, after a database restart)."""
        await self._until(lambda client: _answers(client, f"{self.base_url}/readyz"), within, "become ready")

    async def restart(self, within: float = 90.0) -> None:
        """SIGKILLs the server if it still runs, then starts it again on the same port and settings."""
        if self.running:
            await self.kill()
        await self.start(within)

    async def kill(self) -> None:
        """SIGKILL: the server dies between any two instructions, mid-transaction or mid-commit."""
        assert self._process is not None and self.running, "the server is not running"
        self._kill_group()
        await self.wait()
        self.kills += 1

    def send_signal(self, sig: int) -> None:
        assert self._process is not None
        self._process.send_signal(sig)

    async def terminate(self, within: float = 20.0) -> int:
        """SIGTERM, as a process manager stops it; SIGKILL if it has not exited within `within` seconds.
        Returns the exit status (uvicorn re-raises the signal once it shut down: -SIGTERM is a clean stop)."""
        if self._process is None:
            return 0
        if self.running:
            self._process.send_signal(signal.SIGTERM)
        try:
            return await self.wait(within)
        except TimeoutError:
            self._kill_group()
            return await self.wait()
        finally:
            self._kill_group()  # what it left of its group: workers a SIGKILLed --workers server orphaned

    async def wait(self, within: float = 20.0) -> int:
        """Until the server has exited; its exit status."""
        process = self._process
        assert process is not None
        deadline = time.monotonic() + within
        while (code := process.poll()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not exit within {within} s")
            await asyncio.sleep(0.02)
        _started.discard(self)
        return code

    async def aclose(self) -> None:
        await self.terminate()
        if self._api is not None:
            await self._api.client.aclose()
            self._api = None

    async def __aenter__(self) -> ServeProcess:
        try:
            await self.start()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _kill_group(self) -> None:
        if self._process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._process.pid, signal.SIGKILL)

    async def _until(self, check: Callable[[httpx.AsyncClient], Awaitable[bool]], within: float, what: str) -> None:
        deadline = time.monotonic() + within
        async with httpx.AsyncClient(timeout=5.0) as client:
            while not await check(client):
                if self._process is not None and self._process.poll() is not None:
                    raise RuntimeError(f"the server exited with {self._process.returncode}:\n{self.log()[-4000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the server did not {what} within {within} s:\n{self.log()[-4000:]}")
                await asyncio.sleep(0.05)


async def _answers(client: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await client.get(url)).status_code == 200
    except httpx.TransportError:
        return False


def _default_database_url(workdir: Path) -> str:
    """Where the server's SQLite default is: the rule of Settings itself, not a copy of it."""
    data_dir = workdir / "data"
    return Settings(_env_file=None, data_dir=data_dir, database_url=None).resolved_database_url


_started: set[ServeProcess] = set()


@atexit.register
def _kill_leftovers() -> None:
    """A test that never stopped its server (or a run interrupted in the middle) leaves none behind."""
    for process in list(_started):
        process._kill_group()
