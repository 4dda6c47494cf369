"""A real streaming replica: a throwaway primary cluster of the run's own and a hot standby copied from it.

The shared server cannot be the primary: its pg_hba.conf is not ours to open for replication. A private
cluster made by `initdb -A trust` allows replication connections from this host, so `pg_basebackup -R`
copies it and the copy follows it over streaming replication, as a production replica does. Lag is made real
by pausing the standby's replay (`pg_wal_replay_pause()`), and the standby can be stopped and started.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

import asyncpg
from sqlalchemy.engine import make_url

from tests.pg_server import PgServer, _free_port, _pg_ctl, _run_as_postgres, start_private_cluster


@dataclass
class ReplicaPair:
    primary: PgServer
    replica: PgServer

    def replica_url(self, name: str) -> str:
        return self.replica.database_url(name)

    async def pause_replay(self) -> None:
        """From now on the replica receives WAL but applies none of it: it lags the primary."""
        await self._on_replica("SELECT pg_wal_replay_pause()")
        while await self._on_replica("SELECT pg_get_wal_replay_pause_state()") != "paused":  # noqa: ASYNC110 (the server's state)
            await asyncio.sleep(0.01)

    async def resume_replay(self) -> None:
        await self._on_replica("SELECT pg_wal_replay_resume()")

    async def caught_up(self, within: float = 30.0) -> None:
        """Returns once the replica has applied everything the primary had written when this was called."""
        target = await _fetch(self.primary.dsn(), "SELECT pg_current_wal_lsn()::text")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while await self._on_replica(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn") is not True:
            if loop.time() > deadline:
                raise TimeoutError("the replica did not catch up")
            await asyncio.sleep(0.02)

    def stop_replica(self, mode: str = "immediate") -> None:
        self.replica.pg_ctl_stop(mode)

    def start_replica(self) -> None:
        self.replica.pg_ctl_start()

    def stop(self) -> None:
        self.replica.stop()
        self.primary.stop()

    async def _on_replica(self, sql: str) -> object:
        return await _fetch(self.replica.dsn(), sql)


async def _fetch(dsn: str, sql: str) -> object:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return await conn.fetchval(sql)
    finally:
        await conn.close()


def start_pair() -> ReplicaPair | None:
    """A primary and its streaming replica, both this run's own; None when the PostgreSQL binaries are missing
    (or cannot run here). The caller stops both with `.stop()`."""
    pg_ctl, basebackup = _pg_ctl(), _binary("pg_basebackup")
    if pg_ctl is None or basebackup is None:
        return None
    primary = start_private_cluster()
    if primary is None:
        return None
    try:
        replica = _start_standby(primary, pg_ctl, basebackup)
    except BaseException:
        primary.stop()
        raise
    return ReplicaPair(primary, replica)


def _binary(name: str) -> str | None:
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else shutil.which(name)


def _start_standby(primary: PgServer, pg_ctl: str, basebackup: str) -> PgServer:
    root = tempfile.mkdtemp(prefix="threadstore-replica-")
    data_dir = os.path.join(root, "data")
    run_as = _run_as_postgres()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    port = _free_port()
    try:
        # -R writes standby.signal and primary_conninfo: the copy starts as a standby streaming from `primary`.
        subprocess.run(
            [
                *run_as,
                basebackup,
                "-h",
                "127.0.0.1",
                "-p",
                str(primary.admin_url.port),
                "-U",
                "postgres",
                "-D",
                data_dir,
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
            ],
            capture_output=True,
            check=True,
            timeout=120,
        )
        options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c hot_standby=on"
        subprocess.run(
            [*run_as, pg_ctl, "-D", data_dir, "-w", "-l", os.path.join(root, "log"), "-o", options, "start"],
            capture_output=True,
            check=True,
            timeout=120,
        )
    except subprocess.CalledProcessError as error:
        shutil.rmtree(root, ignore_errors=True)
        raise RuntimeError(f"the replica did not start: {error.stderr.decode(errors='replace')[-2000:]}") from None
    replica = PgServer(make_url(f"postgresql://postgres@127.0.0.1:{port}/postgres"), f"replica on {port}")
    replica._cleanup.append(data_dir)
    replica.data_dir = data_dir
    replica.start_options = options
    return replica
