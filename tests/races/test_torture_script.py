"""The long-run script stays runnable: a one-round SQLite run exits 0 and prints its summary, with every race
family (those of streamed replies included) and streamed replies in its crash round."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from scripts.torture.races import FAMILIES

ROOT = Path(__file__).resolve().parents[2]


async def test_a_short_torture_run_prints_a_clean_summary(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "scripts.torture",
        "--no-postgres",
        "--duration",
        "1",
        "--crash-seconds",
        "4",
        "--clients",
        "8",
        "--workdir",
        str(tmp_path),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), timeout=180)
    text = output.decode()
    assert proc.returncode == 0, text
    rows = {line[:44].strip(): line[44:].split() for line in text.splitlines() if len(line) > 44}
    # Columns: runs, operations, acknowledged, unknown, audited, kills, retries, violations.
    assert int(rows["races, SQLite"][0]) == len(FAMILIES), text  # one storm of every family
    assert int(rows["crash audit, server SIGKILL, SQLite"][0]) == 1, text
    assert int(rows["crash audit, server SIGKILL, SQLite"][5]) >= 1, text  # killed at least once
    assert rows["total"][-1] == "0", text  # no violation
    # Streamed replies in the crash round: started, deltas acknowledged (each audited in its reply), ...
    assert int(rows["replies, server SIGKILL, SQLite"][0]) >= 1, text
    assert int(rows["replies, server SIGKILL, SQLite"][1]) >= 1, text
