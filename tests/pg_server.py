"""Finds a PostgreSQL server for the test run, in the order the README promises.

1. `THREADSTORE_TEST_DATABASE_URL` (any database on the server; the run creates its own databases there);
2. the local server on 127.0.0.1:5432 (user postgres), when it answers;
3. a throwaway cluster started with `pg_ctl` in a temporary folder, when the binaries exist;
4. none: the PostgreSQL suite is skipped with a loud message, or fails when `CI` is set.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

LOCAL_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass
class PgServer:
    admin_url: URL  # plain postgresql:// URL of a maintenance database on the server
    how: str
    _cleanup: list[str] = field(default_factory=list)
    # Set for a cluster this run started itself: only such a cluster may be stopped and restarted by tests
    # (never the shared server, which other test runs on the machine may be using).
    data_dir: str | None = None
    start_options: str = ""

    def database_url(self, name: str, driver: str = "asyncpg") -> str:
        return self.admin_url.set(drivername=f"postgresql+{driver}", database=name).render_as_string(False)

    def dsn(self, name: str | None = None) -> str:
        url = self.admin_url.set(drivername="postgresql")
        if name:
            url = url.set(database=name)
        return url.render_as_string(hide_password=False)

    def pg_ctl_stop(self, mode: str = "fast") -> None:
        """Stops this run's own cluster (`mode` as pg_ctl's -m: smart, fast, immediate)."""
        assert self.data_dir, "only a cluster started by this run may be stopped"
        subprocess.run(
            [*_run_as_postgres(), _pg_ctl() or "pg_ctl", "-D", self.data_dir, "-m", mode, "-w", "stop"],
            capture_output=True,
            check=True,
        )

    def pg_ctl_start(self) -> None:
        """Starts this run's own cluster again after `pg_ctl_stop`, on the same port."""
        assert self.data_dir, "only a cluster started by this run may be started"
        log = os.path.join(os.path.dirname(self.data_dir), "log")
        subprocess.run(
            [
                *_run_as_postgres(),
                _pg_ctl() or "pg_ctl",
                "-D",
                self.data_dir,
                "-w",
                "-l",
                log,
                "-o",
                self.start_options,
                "start",
            ],
            capture_output=True,
            check=True,
        )

    def stop(self) -> None:
        for data_dir in self._cleanup:
            subprocess.run(
                [*_run_as_postgres(), _pg_ctl() or "pg_ctl", "-D", data_dir, "-m", "immediate", "stop"],
                capture_output=True,
            )
            shutil.rmtree(Path(data_dir).parent, ignore_errors=True)


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _pg_ctl() -> str | None:
    found = shutil.which("pg_ctl")
    if found:
        return found
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return candidates[-1] if candidates else None


def _run_as_postgres() -> list[str]:
    if os.geteuid() != 0 or shutil.which("runuser") is None:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_throwaway(pg_ctl: str) -> PgServer | None:
    bin_dir = Path(pg_ctl).parent
    root = tempfile.mkdtemp(prefix="threadstore-pg-")
    data_dir = os.path.join(root, "data")
    port = _free_port()
    run_as = _run_as_postgres()
    if os.geteuid() == 0:  # initdb refuses to run as root
        if not run_as:
            return None
        shutil.chown(root, "postgres")
    init = subprocess.run(
        [*run_as, str(bin_dir / "initdb"), "-D", data_dir, "-U", "postgres", "-A", "trust"], capture_output=True
    )
    if init.returncode != 0:
        return None
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    start = subprocess.run(
        [*run_as, pg_ctl, "-D", data_dir, "-w", "-l", os.path.join(root, "log"), "-o", options, "start"],
        capture_output=True,
    )
    if start.returncode != 0:
        return None
    server = PgServer(make_url(f"postgresql://postgres@127.0.0.1:{port}/postgres"), f"throwaway cluster on {port}")
    server._cleanup.append(data_dir)
    server.data_dir = data_dir
    server.start_options = options
    return server


def start_private_cluster() -> PgServer | None:
    """A throwaway cluster of this run's own, for tests that stop, kill or restart PostgreSQL; None when the
    binaries are missing. The caller stops it with `.stop()`."""
    pg_ctl = _pg_ctl()
    return _start_throwaway(pg_ctl) if pg_ctl else None


def find_server() -> PgServer | None:
    explicit = os.environ.get("THREADSTORE_TEST_DATABASE_URL")
    if explicit:
        url = make_url(explicit)
        url = url.set(drivername="postgresql", database=url.database or "postgres")
        return PgServer(url, "THREADSTORE_TEST_DATABASE_URL")
    # THREADSTORE_TEST_LOCAL_URL moves the probe (pointing it at a closed port exercises the fallbacks).
    local = os.environ.get("THREADSTORE_TEST_LOCAL_URL", LOCAL_URL)
    if asyncio.run(_answers(local)):
        return PgServer(make_url(local), f"local server at {make_url(local).render_as_string()}")
    pg_ctl = _pg_ctl() if os.environ.get("THREADSTORE_TEST_NO_PG_CTL") != "1" else None
    if pg_ctl:
        return _start_throwaway(pg_ctl)
    return None
