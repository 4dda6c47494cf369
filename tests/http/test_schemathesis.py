"""Schemathesis, a property-based API tester no one here wrote, against a real `threadstore serve` on each
database, with every check and every phase (the stateful one included): the OpenAPI document says what the
server does, and the server does what the document says. Its summary is printed (`pytest -s` shows it).

The run is bounded (MAX_EXAMPLES per operation and phase, a fixed seed) to keep CI short and repeatable;
THREADSTORE_TEST_SCHEMATHESIS_EXAMPLES and _SEED run it longer or elsewhere by hand. What Schemathesis is told
about the contract (schemathesis.toml, schemathesis_hooks.py) is listed, with reasons, in docs/api.md.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

from tests.harness.client import bearer
from tests.harness.databases import Backend, new_user
from tests.harness.processes import ServeProcess

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
MAX_EXAMPLES = int(os.environ.get("THREADSTORE_TEST_SCHEMATHESIS_EXAMPLES", "25"))
SEED = os.environ.get("THREADSTORE_TEST_SCHEMATHESIS_SEED", "20261203")
# The server's content limit is lowered for the run: the document states whichever limit is configured, and
# a string of the default 262,144 characters that must match a pattern takes Schemathesis minutes to make.
SERVER_SETTINGS = {"max_content_chars": 2048}
WITHIN = 600.0  # a hung run fails the test instead of the CI job


async def test_schemathesis_finds_nothing_the_document_does_not_say(backend: Backend, tmp_path: Path) -> None:
    async with ServeProcess(tmp_path, backend, settings=SERVER_SETTINGS, args=["--no-migrate"]) as server:
        output, code = await run_schemathesis(server.base_url, tmp_path)
    print(f"\n== Schemathesis on {backend.name}\n{summary(output)}")
    assert code == 0, output[-20_000:]


async def run_schemathesis(base_url: str, workdir: Path) -> tuple[str, int]:
    # Two users with tokens of their own, so that object_level_authorization can read one's data as the other.
    users = workdir / "schemathesis-users.json"
    entries = [{"name": name, "fixedHeaders": [header(new_user())]} for name in ("alice", "bob")]
    users.write_text(json.dumps({"auth": entries}))
    command = [
        *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(HERE / "schemathesis.toml"), "run"),
        f"{base_url}/openapi.json",
        *("--checks", "all"),
        # DELETE /api/threads/{id} archives (a soft delete): the thread stays readable, as the contract says.
        *("--exclude-checks", "use_after_free"),
        *("--max-examples", str(MAX_EXAMPLES), "--seed", SEED, "--generation-database", "none"),
        *("--request-timeout", "10", "--no-color"),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "SCHEMATHESIS_HOOKS": "tests.http.schemathesis_hooks",
        "SCHEMATHESIS_USERS_FILE": str(users),
    }
    process = await asyncio.create_subprocess_exec(
        *command, cwd=workdir, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), WITHIN)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return stdout.decode(errors="replace"), process.returncode


def header(user: str) -> dict[str, str]:
    [(name, value)] = bearer(user).items()
    return {"name": name, "value": value}


def summary(output: str) -> str:
    """The phases and the summary, without the run's per-failure details (those are in the assertion)."""
    lines = output.splitlines()
    phases = [line for line in lines if " (in " in line or "generated" in line]
    start = next((i for i, line in enumerate(lines) if "SUMMARY" in line), len(lines))
    return "\n".join([*phases, *lines[start:]])
