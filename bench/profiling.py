"""Where threadstore's time goes under load: py-spy samples the server while wrk drives one endpoint."""

from __future__ import annotations

import collections
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from load import Sample, parse, start_wrk
from servers import Server

_FRAME = re.compile(r"^(?P<name>.*) \((?P<file>[^:()]+)(?::\d+)?\)$")


def ensure_py_spy(venv_bin: Path) -> Path:
    path = venv_bin / "py-spy"
    if not path.exists():
        subprocess.run([str(venv_bin / "python"), "-m", "pip", "install", "--quiet", "py-spy"], check=True)
    return path


@dataclass(frozen=True)
class Profile:
    key: str
    sample: Sample
    stacks: dict[str, int]  # collapsed stack -> samples

    @property
    def total(self) -> int:
        return sum(self.stacks.values())


def record(
    py_spy: Path, server: Server, key: str, lines_file: Path, *, seconds: float, connections: int, out: Path
) -> Profile:
    raw = out / f"profile-{key}.txt"
    load = start_wrk(server.url, lines_file, seconds=seconds + 2, connections=connections, threads=2)
    spy = subprocess.run(
        [str(py_spy), "record", "--pid", str(server.pid), "--duration", str(int(seconds)), "--rate", "250",
         "--format", "raw", "--output", str(raw), "--nonblocking"],
        capture_output=True, text=True,
    )  # fmt: skip
    wrk_out, _ = load.communicate()
    if spy.returncode != 0:
        print(f"py-spy failed: {spy.stderr.strip()}", file=sys.stderr)
    stacks: dict[str, int] = {}
    if raw.exists():
        for line in raw.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if stack and count.isdigit():
                stacks[stack] = stacks.get(stack, 0) + int(count)
    return Profile(key, parse(wrk_out), stacks)


# The process's entry frames: in every stack, so they say nothing.
_ROOTS = {
    "<module> (threadstore)",
    "main (threadstore/cli.py)",
    "_serve (threadstore/cli.py)",
    "run (uvicorn/main.py)",
    "asyncio_run (uvicorn/_compat.py)",
    "Server.run (uvicorn/server.py)",
    "Runner.run (asyncio/runners.py)",
    "run (asyncio/runners.py)",
    "<module> (uvicorn/__main__.py)",
}


def _package(frame: str) -> str:
    """py-spy names files by module path (`sqlalchemy/engine/base.py`): the first part is the package."""
    match = _FRAME.match(frame)
    path = match.group("file") if match else frame
    return path.split("site-packages/", 1)[-1].split("/", 1)[0].removesuffix(".py") or "?"


def _function(frame: str) -> str:
    match = _FRAME.match(frame)
    return f"{match.group('name')} ({match.group('file')})" if match else frame


def summary(profile: Profile, top: int = 25) -> str:
    """Self time by package and by function (leaf frames), then functions by inclusive share of samples.

    Coroutine stacks are cut where a task resumes, so outer frames (uvicorn, the middleware) show less than
    they cost; what a handler awaits is seen from the frame that resumed it."""
    total = profile.total or 1
    by_package: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    for stack, count in profile.stacks.items():
        frames = [f for f in stack.split(";") if f]
        if not frames:
            by_package["(no Python frame)"] += count
            continue
        by_package[_package(frames[-1])] += count
        own[_function(frames[-1])] += count
        for name in {_function(f) for f in frames} - _ROOTS:
            inclusive[name] += count
    lines = [
        f"### {profile.key}: {profile.sample.rps:,.0f} req/s under py-spy, {profile.total} samples",
        "",
        "Self time by package: " + ", ".join(f"{p} {n * 100 / total:.0f}%" for p, n in by_package.most_common(12)),
        "",
        "Self time by function: " + ", ".join(f"`{f}` {n * 100 / total:.1f}%" for f, n in own.most_common(12)),
        "",
        "| inclusive | function |",
        "|---:|---|",
    ]
    lines += [f"| {n * 100 / total:.0f}% | `{name}` |" for name, n in inclusive.most_common(top)]
    return "\n".join(lines)
