"""Load generation: request-line files for request.lua, and one wrk run turned into a `Sample`."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

LUA = Path(__file__).with_name("request.lua")


@dataclass(frozen=True)
class Line:
    method: str
    path: str
    token: str
    body: str = ""  # "%R" is replaced by a random number per request


def write_lines(path: Path, lines: Iterable[Line]) -> Path:
    with open(path, "w") as handle:
        for line in lines:
            handle.write(f"{line.method}\t{line.path}\t{line.token}\t{line.body}\n")
    return path


@dataclass(frozen=True)
class Sample:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non2xx: int
    last_bad_status: int
    socket_errors: int
    timeouts: int
    server_cpu_seconds: float = 0.0  # CPU the server process used during the run (set by the caller)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_ms_per_request(self) -> float:
        """Server CPU per request: much steadier than req/s when other processes compete for the cores."""
        return self.server_cpu_seconds * 1000 / self.requests if self.requests else 0.0

    @property
    def failures(self) -> int:
        return self.non2xx + self.socket_errors + self.timeouts


def wrk_command(
    url: str, lines_file: Path, *, seconds: float, connections: int, threads: int, script: Path = LUA
) -> list[str]:
    return [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
        "-s", str(script), url, "--", str(lines_file),
    ]  # fmt: skip


def parse(output: str) -> Sample:
    for line in output.splitlines():
        if line.startswith("BENCH "):
            data = json.loads(line[len("BENCH ") :])
            return Sample(
                requests=data["requests"],
                seconds=data["duration_us"] / 1e6,
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                max_ms=data["max_us"] / 1000,
                non2xx=data["non2xx"],
                last_bad_status=data["last_bad_status"],
                socket_errors=data["socket_errors"],
                timeouts=data["timeouts"],
            )
    raise RuntimeError(f"wrk printed no summary:\n{output}")


def run_wrk(
    url: str,
    lines_file: Path,
    *,
    seconds: float,
    connections: int,
    threads: int,
    split: Sequence[str] = (),
    script: Path = LUA,
) -> Sample:
    """`split`: "host:port" of several servers; wrk's thread i loads split[i mod n] (so its connections too),
    and the one summary covers them all. `threads` must then be a multiple of their number. `script`: another
    wrk script that prints the same summary line (e.g. delta.lua)."""
    if split and threads % len(split):
        raise ValueError(f"{threads} wrk threads cannot be shared evenly by {len(split)} servers")
    command = wrk_command(url, lines_file, seconds=seconds, connections=connections, threads=threads, script=script)
    env = {**os.environ, "BENCH_SPLIT": ",".join(split)} if split else None
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    return parse(done.stdout)


def start_wrk(url: str, lines_file: Path, *, seconds: float, connections: int, threads: int) -> subprocess.Popen[str]:
    command = wrk_command(url, lines_file, seconds=seconds, connections=connections, threads=threads)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
