"""Peak resident memory of `threadstore serve` while it streams a whole conversation as NDJSON (API.md,
"Whole-conversation reads"): a path of 1,000 messages against one of 100,000, and 1,000 long messages
(100,000 characters each). A stream read in pages holds one page at a time, so the peaks should be about equal;
a server that built the answer in memory would grow by the size of the answer (tens to hundreds of MB).

    .venv/bin/python bench/ndjson_memory.py [--cases 1000x200,100000x200,1000x100000] [--slow] [--no-jit]

Each size is measured on a fresh server process (one worker, production settings) after a warm-up stream, so
what grows is that stream's. Seeds its own database on the server of --database-url (chains
written by SQL, as migration 0006 shapes a v1 thread) and drops it afterwards. Not a test: it prints numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import seeding
from servers import Server, start_threadstore

from threadstore.auth import issue_token

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
APP_NAME = "threadstore-bench-ndjson"
OWNER = "user_ndjson"

# One thread holding a chain of $2 messages of $4 characters on its trunk, as migration 0006 converts a v1
# thread.
_THREAD = """
INSERT INTO threads (id, user_id, title, metadata, status, created_at, updated_at, message_count, last_message_at,
                     version, current_depth)
VALUES ($1, $3, 'ndjson', '{}'::jsonb, 'active', now(), now(), $2::int, now(), $2::int + 1, 0)
"""
_TRUNK = """
INSERT INTO branches (thread_id, parent_branch_id, fork_depth, sibling_index, level)
VALUES ($1, NULL, 0, 1, 0) RETURNING id
"""
_MESSAGES = """
INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at, branch_id, depth, parent_id,
                      sibling_index)
SELECT 'msg_' || substr(md5($1 || '-' || k), 1, 22), $1, k,
       CASE WHEN k % 2 = 1 THEN 'user' ELSE 'assistant' END, left(repeat('lorem ipsum dolor sit amet ' || k, $4::int
       / 20 + 1), $4::int),
       '{}'::jsonb, now() - interval '1 day' + k * interval '1 millisecond', $3, k,
       CASE WHEN k > 1 THEN 'msg_' || substr(md5($1 || '-' || (k - 1)), 1, 22) END, 1
FROM generate_series(1, $2::int) k
"""
_CURRENT = """
UPDATE threads SET current_branch_id = $2, current_depth = $3,
       current_message_id = 'msg_' || substr(md5($1 || '-' || $3::int), 1, 22)
WHERE id = $1
"""


@dataclass(frozen=True)
class Case:
    messages: int
    chars: int  # of each message's content

    @classmethod
    def parse(cls, text: str) -> Case:
        messages, _, chars = text.partition("x")
        return cls(int(messages), int(chars or 200))

    @property
    def thread_id(self) -> str:
        return f"thr_nd{self.messages:09d}x{self.chars:08d}"


WARM_UP = Case(2_000, 200)


async def seed(dsn: str, cases: list[Case]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for case in cases:
            async with conn.transaction():
                await conn.execute(_THREAD, case.thread_id, case.messages, OWNER)
                trunk = await conn.fetchval(_TRUNK, case.thread_id)
                await conn.execute(_MESSAGES, case.thread_id, case.messages, trunk, case.chars)
                await conn.execute(_CURRENT, case.thread_id, trunk, case.messages)
        await conn.execute("VACUUM ANALYZE messages")
    finally:
        await conn.close()


def vm_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")


@dataclass(frozen=True)
class Stream:
    lines: int
    bytes: int
    seconds: float
    peak_sampled_kib: int  # highest VmRSS seen while streaming, every 5 ms


async def read_stream(server: Server, token: str, tid: str, *, slow: bool) -> Stream:
    """Streams the thread's active path as NDJSON to the end; `slow`: the client pauses 1 ms every 64 KiB."""
    peak = 0
    done = False

    async def sample() -> None:
        nonlocal peak
        while not done:
            peak = max(peak, vm_kib(server.pid, "VmRSS"))
            await asyncio.sleep(0.005)

    sampler = asyncio.create_task(sample())
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/x-ndjson"}
    lines = size = 0
    started = time.perf_counter()
    try:
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=httpx.Timeout(60.0)) as client,
            client.stream("GET", f"/api/threads/{tid}/messages", headers=headers) as response,
        ):
            if response.status_code != 200 or response.headers["content-type"] != "application/x-ndjson":
                raise RuntimeError(f"{response.status_code} {response.headers.get('content-type')}")
            async for chunk in response.aiter_raw(65_536):
                lines += chunk.count(b"\n")
                size += len(chunk)
                if slow:
                    await asyncio.sleep(0.001)
    finally:
        done = True
        await sampler
    return Stream(lines, size, time.perf_counter() - started, peak)


@dataclass(frozen=True)
class Measured:
    case: Case
    rss_before_kib: int
    hwm_after_kib: int
    stream: Stream


async def measure(case: Case, url: str, secret: str, out: Path, *, slow: bool) -> Measured:
    server = start_threadstore(VENV_BIN, url, secret, APP_NAME, out, name=f"threadstore-ndjson-{case.thread_id}")
    try:
        await asyncio.to_thread(server.wait_ready, "/readyz")
        token = issue_token(secret, OWNER, None)
        # Warm-up: imports, the pool, the statement paths of a few pages are in place before the measured stream.
        warm = await read_stream(server, token, WARM_UP.thread_id, slow=False)
        assert warm.lines == WARM_UP.messages, warm
        rss_before = vm_kib(server.pid, "VmRSS")
        stream = await read_stream(server, token, case.thread_id, slow=slow)
        if stream.lines != case.messages:
            raise RuntimeError(f"streamed {stream.lines} lines of {case.messages}")
        return Measured(case, rss_before, vm_kib(server.pid, "VmHWM"), stream)
    finally:
        server.stop()


def mib(kib: int) -> str:
    return f"{kib / 1024:.1f}"


async def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    p.add_argument("--database-name", default="threadstore_bench_ndjson")
    p.add_argument(
        "--cases",
        default="1000x200,100000x200,1000x100000",
        help="paths to stream, comma-separated: MESSAGESxCHARACTERS (characters of each message's content)",
    )
    p.add_argument("--slow", action="store_true", help="the client pauses 1 ms every 64 KiB it reads")
    p.add_argument(
        "--no-jit",
        action="store_true",
        help="ALTER DATABASE … SET jit = off: PostgreSQL's JIT compiles the path queries (~0.4 s each, 2 cores)",
    )
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = p.parse_args()
    cases = [Case.parse(c) for c in args.cases.split(",")]
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    dsns = seeding.Dsns.on_server(args.database_url, args.database_name)
    await seeding.recreate_database(dsns)
    try:
        seeding.migrate_threadstore(VENV_BIN / "threadstore", dsns.threadstore, out)
        if args.no_jit:
            conn = await asyncpg.connect(dsns.bench)
            await conn.execute(f'ALTER DATABASE "{dsns.name}" SET jit = off')
            await conn.close()
        started = time.perf_counter()
        await seed(dsns.bench, [WARM_UP, *cases])
        print(f"seeded {len(cases) + 1} threads in {time.perf_counter() - started:.1f} s")
        secret = secrets.token_urlsafe(48)
        results = [await measure(case, dsns.threadstore, secret, out, slow=args.slow) for case in cases]
    finally:
        await seeding.drop_database(dsns)
    client, jit = "slow" if args.slow else "fast", "off" if args.no_jit else "on"
    print(f"\nserver RSS while streaming the active path as NDJSON ({client} client, jit {jit})")
    header = ("messages", "chars", "MB sent", "seconds", "RSS before", "peak RSS", "growth", "VmHWM")
    print("{:>9} {:>7} {:>8} {:>8} {:>11} {:>9} {:>7} {:>7}".format(*header))
    for r in results:
        s = r.stream
        print(
            f"{r.case.messages:>9,} {r.case.chars:>7,} {s.bytes / 1e6:>8.1f} {s.seconds:>8.2f} "
            f"{mib(r.rss_before_kib):>11} {mib(s.peak_sampled_kib):>9} {mib(s.peak_sampled_kib - r.rss_before_kib):>7} "
            f"{mib(r.hwm_after_kib):>7}"
        )
    print("MiB. peak RSS: the highest VmRSS sampled every 5 ms during the stream; VmHWM: the kernel's high-water")
    print("mark (the whole process life, warm-up included; it can lag the true peak, so both are shown)")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
