"""PgBouncer in transaction mode in front of the test run's PostgreSQL server, as production runs it.

The distribution's package (`apt-get install pgbouncer`; scripts/bootstrap installs it when it can), started
on a free port with an ini and user list of its own in a temporary folder. Its defaults are kept where they
matter to the app: no `ignore_startup_parameters`, no `max_prepared_statements` (1.18 has none), so a client
that sends session settings at startup or reuses named prepared statements fails here as it would there.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from tests.pg_server import PgServer, _free_port

_CANDIDATES = ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer", "/usr/local/bin/pgbouncer")
# Server connections per database: small, so transactions really are multiplexed over fewer sessions than
# the app's pool holds (the shared server's connection slots are shared with other test runs, too).
POOL_SIZE = 8


def find_binary() -> str | None:
    if os.environ.get("THREADSTORE_TEST_NO_PGBOUNCER") == "1":  # to try the path of a machine without it
        return None
    found = shutil.which("pgbouncer")
    if found:
        return found
    return next((path for path in _CANDIDATES if os.access(path, os.X_OK)), None)


def version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0].strip() if out else "unknown version"


@dataclass
class PgBouncer:
    port: int
    server: PgServer
    version: str
    _process: subprocess.Popen[bytes]
    _root: str

    @property
    def pid(self) -> int:
        return self._process.pid

    def database_url(self, name: str) -> str:
        """The app's URL of database `name` through PgBouncer (same user as the server's)."""
        return self.server.admin_url.set(
            drivername="postgresql+asyncpg", host="127.0.0.1", port=self.port, database=name
        ).render_as_string(hide_password=False)

    def admin_dsn(self) -> str:
        return self.server.admin_url.set(
            drivername="postgresql", host="127.0.0.1", port=self.port, database="pgbouncer"
        ).render_as_string(hide_password=False)

    async def reconnect(self, name: str) -> None:
        """Closes database `name`'s server connections once they are released, so new ones start with the
        role's current defaults (what an operator does after `threadstore migrate` changed a bound)."""
        conn = await asyncpg.connect(self.admin_dsn(), statement_cache_size=0)
        try:
            await conn.execute(f"RECONNECT {name}")
        finally:
            await conn.close()

    def log(self) -> str:
        path = Path(self._root, "pgbouncer.log")
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)  # "safe shutdown" would wait for clients: SIGINT/TERM don't
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        _running.discard(self)
        shutil.rmtree(self._root, ignore_errors=True)

    def __hash__(self) -> int:
        return id(self)


def start(server: PgServer, **settings: object) -> PgBouncer | None:
    """PgBouncer in front of `server`, or None when there is no binary (or it cannot start: the reason is
    raised for a binary that exists but fails, so a broken setup is never mistaken for a missing one).
    `settings`: ini settings of its [pgbouncer] section beyond the harness's (query_wait_timeout=1, say)."""
    binary = find_binary()
    if binary is None:
        return None
    root = tempfile.mkdtemp(prefix="threadstore-pgbouncer-")
    port = _free_port()
    host = server.admin_url.host or "127.0.0.1"
    backend_port = server.admin_url.port or 5432
    user = server.admin_url.username or "postgres"
    Path(root, "userlist.txt").write_text(f'"{user}" ""\n')
    Path(root, "pgbouncer.ini").write_text(
        "\n".join(
            [
                "[databases]",
                f"* = host={host} port={backend_port}",
                "[pgbouncer]",
                "listen_addr = 127.0.0.1",
                f"listen_port = {port}",
                "unix_socket_dir =",
                "auth_type = trust",
                f"auth_file = {root}/userlist.txt",
                f"admin_users = {user}",
                "pool_mode = transaction",
                "max_client_conn = 2000",
                f"default_pool_size = {POOL_SIZE}",
                f"logfile = {root}/pgbouncer.log",
                f"pidfile = {root}/pgbouncer.pid",
                "log_connections = 0",  # every test's app connects: the log keeps what went wrong only
                "log_disconnections = 0",
                *(f"{name} = {value}" for name, value in settings.items()),
                "",
            ]
        )
    )
    run_as = _unprivileged_user()
    if run_as is not None:
        os.chown(root, run_as.pw_uid, run_as.pw_gid)
        for name in ("userlist.txt", "pgbouncer.ini"):
            os.chown(Path(root, name), run_as.pw_uid, run_as.pw_gid)
    process = subprocess.Popen(
        [binary, f"{root}/pgbouncer.ini"],
        # Its log goes to its logfile only: a pipe nobody reads would fill and stop PgBouncer mid-run.
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        user=run_as.pw_uid if run_as else None,
        group=run_as.pw_gid if run_as else None,
        preexec_fn=_die_with_parent,  # the session fixture's thread: no others run then
    )
    bouncer = PgBouncer(port, server, version(binary), process, root)
    _running.add(bouncer)
    deadline = time.monotonic() + 10
    while not _listening(port):
        if process.poll() is not None or time.monotonic() > deadline:
            log = bouncer.log()
            bouncer.stop()
            raise RuntimeError(f"PgBouncer did not start: {log[-2000:]}")
        time.sleep(0.05)
    return bouncer


def _unprivileged_user() -> pwd.struct_passwd | None:
    """PgBouncer refuses to run as root: as root it runs as the postgres user."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        return pwd.getpwnam("nobody")


def _die_with_parent() -> None:
    # After the switch of user (which clears it): PgBouncer dies with the test run, however that ends.
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _listening(port: int) -> bool:
    # A TCP probe, not a login: this may run inside the test's event loop (a fixture started on first use).
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


_running: set[PgBouncer] = set()


@atexit.register
def _stop_leftovers() -> None:
    for bouncer in list(_running):
        with contextlib.suppress(Exception):
            bouncer.stop()
