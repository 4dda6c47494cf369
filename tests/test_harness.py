"""What the harness promises the tests built on it: real server processes share a database, come back
after a SIGKILL, and never outlive the test or the test run."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import fresh_database, new_user
from tests.harness.processes import ServeProcess
from tests.pg_server import PgServer

ROOT = Path(__file__).resolve().parent.parent


async def test_two_servers_share_one_database_and_a_killed_one_serves_again(
    pg_server: PgServer | None, tmp_path: Path
) -> None:
    async with (
        fresh_database("postgresql", pg_server, tmp_path) as backend,
        ServeProcess(tmp_path, backend) as first,
        ServeProcess(tmp_path, backend) as second,
    ):
        user = new_user()
        mine = await first.api.create_thread(user, title="from the first")
        seen = await second.api.request("GET", f"/api/threads/{mine['id']}", user=user)
        assert seen.status_code == 200 and seen.json() == mine
        theirs = await second.api.create_thread(user, title="from the second")

        port = first.port
        await first.kill()
        assert not first.running and first.returncode == -signal.SIGKILL
        with pytest.raises(httpx.TransportError):
            await first.api.client.get("/healthz")
        meanwhile = await second.api.create_thread(user, title="while the first was dead")

        await first.restart()
        listed = (await first.api.request("GET", "/api/threads", user=user)).json()["data"]
        assert {t["id"] for t in listed} == {mine["id"], theirs["id"], meanwhile["id"]}
        assert (first.port, first.starts, first.kills) == (port, 2, 1)


async def test_a_failing_test_leaves_no_server_behind(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="the test failed"):
        async with ServeProcess(tmp_path) as server:
            raise RuntimeError("the test failed")
    assert not _alive(server.pid)


async def test_a_server_dies_with_the_test_process_that_started_it(tmp_path: Path) -> None:
    """The test run itself killed (SIGKILL: no cleanup runs) takes its servers with it."""
    if sys.platform != "linux":
        pytest.skip("the kernel's parent-death signal is Linux's")
    starter = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from tests.harness.processes import ServeProcess\n"
        "async def main() -> None:\n"
        "    server = ServeProcess(Path(sys.argv[1]))\n"
        "    await server.start()\n"
        "    print(server.pid, flush=True)\n"
        "    await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    parent = subprocess.Popen(  # noqa: ASYNC220 (returns once the child exists)
        [sys.executable, "-c", starter, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(parent.stdout.readline), 90)
        pid = int(line)
        assert _alive(pid)
    finally:
        parent.kill()
        parent.wait()
    for _ in range(200):
        if not _alive(pid):
            break
        await asyncio.sleep(0.05)
    assert not _alive(pid), "the server outlived the process that started it"


def _alive(pid: int) -> bool:
    """Running, not merely a zombie waiting for a reaper that a container may not have."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"
