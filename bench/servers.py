"""The two servers under test, started side by side with the same uvicorn (1 worker, warning logs)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class Server:
    name: str
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_kib(self) -> int:
        """Resident set size of the server process (uvicorn with one worker serves in this process)."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError(f"no VmRSS for {self.name}")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far."""
        return cpu_seconds(self.pid)

    def loaded(self, library: str) -> bool:
        """Whether a shared library (e.g. uvloop, httptools) is mapped: proof that it is in use, not just installed."""
        return library in Path(f"/proc/{self.pid}/maps").read_text()

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log}")
            try:
                if httpx.get(self.url + path, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s; see {self.log}")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def cpu_seconds(pid: int, *, reaped_children: bool = False) -> float:
    """User + system CPU time process `pid` has used so far (with `reaped_children`, its ended children's too)."""
    fields = _stat(pid)
    ticks = int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped_children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def cluster_cpu_seconds(data_dir: str) -> float:
    """CPU time a PostgreSQL cluster of this machine has used so far: its postmaster, the backends and workers
    that ended (reaped by the postmaster) and those alive."""
    postmaster = int(Path(data_dir, "postmaster.pid").read_text().split()[0])
    total = cpu_seconds(postmaster, reaped_children=True)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = _stat(int(entry.name))
            except (OSError, IndexError):  # ended meanwhile
                continue
            if int(fields[1]) == postmaster:
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: state, ppid, …; utime, stime, cutime, cstime at 11 to 14."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _spawn(name: str, command: list[str], env: dict[str, str], workdir: Path) -> Server:
    port = int(command[command.index("--port") + 1])
    log = workdir / f"{name}.log"
    with open(log, "wb") as handle:
        process = subprocess.Popen(
            command, env=env, cwd=workdir, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(name, process, port, log)


def start_threadstore(
    venv_bin: Path,
    sqlalchemy_url: str,
    secret: str,
    app_name: str,
    workdir: Path,
    *,
    name: str = "threadstore",
    settings: Mapping[str, str] | None = None,
    source: Path | None = None,
) -> Server:
    """`settings`: more THREADSTORE_* variables, e.g. the pool mode behind PgBouncer; `name` names the log;
    `source`: a `src` folder of another version of threadstore to serve (PYTHONPATH), e.g. an older commit's."""
    # Production defaults: only what must be given (database, secret) and quieter logs. The working folder
    # is bench/out, so a developer's .env cannot change the settings measured.
    env = {
        **_clean_environ(),
        "THREADSTORE_DATABASE_URL": sqlalchemy_url,
        "THREADSTORE_JWT_SECRET": secret,
        "THREADSTORE_LOG_LEVEL": "WARNING",
        "THREADSTORE_APPLICATION_NAME": app_name,
        **(settings or {}),
    }
    serve = ["serve", "--no-migrate", "--workers", "1", "--port", str(free_port())]
    if source is None:
        return _spawn(name, [str(venv_bin / "threadstore"), *serve], env, workdir)
    env["PYTHONPATH"] = str(source)
    return _spawn(name, [str(venv_bin / "python"), "-m", "threadstore", *serve], env, workdir)


def start_yardstick(venv_bin: Path, yardstick_dir: Path, dsn: str, secret: str, workdir: Path) -> Server:
    env = {**_clean_environ(), "YS_DSN": dsn, "YS_JWT_SECRET": secret, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [
        str(venv_bin / "python"), "-m", "uvicorn", "app:app", "--app-dir", str(yardstick_dir),
        "--host", "127.0.0.1", "--port", str(free_port()), "--workers", "1", "--no-access-log",
        "--log-level", "warning",
    ]  # fmt: skip
    return _spawn("yardstick", command, env, workdir)


def _clean_environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("THREADSTORE_", "YS_"))}
