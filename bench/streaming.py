"""The streaming scenario of issue 17: replies generated at a steady pace, each watched by an event stream.

Each reply is an `in_progress` message in a thread of its own user, grown by deltas of 40 characters, one
every `interval` seconds, sent one after another over the reply's own keep-alive connection (each offset is
the length the previous delta's answer gave: the generator of API.md). The sends of the replies are spread
evenly over the interval. Each reply's thread is watched by a stream opened before the first delta:
`GET /api/events?thread_id=…` when the server accepts it (probed: another user's thread is 404 there), else
the user's whole stream, which carries the same events since the user has this one reply.

Measured per delta: the request's latency (send → 200), and its event's delivery to the watching stream,
bounded on both sides since the commit lies between send and 200: send → arrival (the figure judged: it can
only overstate) and 200 → arrival (negative when the event overtook the answer). Errors: any answer but 200,
a broken connection, an event missing 5 s after the last delta or out of order on its stream (a stream
rebuilds the text exactly only if it gets every delta in order), and a reply whose stored text at the end is
not exactly the acknowledged deltas."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from rawhttp import Connection, EventStream, HttpError

from threadstore.auth import issue_token

TEXT = "Streaming reply text, forty characters. "
assert len(TEXT) == 40
SETUP_CONCURRENCY = 16
DRAIN_SECONDS = 5.0
REQUEST_TIMEOUT = 10.0
MAX_DELTA_P99_MS = 100.0
MAX_DELIVERY_P99_MS = 500.0
MIN_ACHIEVED = 0.95  # of the offered rate: a step whose generators fell behind did not run at its rate


@dataclass
class Reply:
    user: str
    token: str
    thread_id: str
    message_id: str
    length: int = 0  # acknowledged
    sent: dict[int, tuple[float, float]] = field(default_factory=dict)  # offset -> (send, 200) times
    arrived: dict[int, float] = field(default_factory=dict)  # offset -> arrival of its event


@dataclass(frozen=True)
class Step:
    replies: int
    interval: float
    seconds: float
    filtered: bool  # streams opened with ?thread_id=
    acknowledged: int
    errors: dict[str, int]
    late: int  # sends that left more than one interval after their due time
    delta_ms: list[float]  # per acknowledged delta, send → 200
    delivery_ms: list[float]  # send → event
    after_ack_ms: list[float]  # 200 → event
    server_cpu_s: float
    client_cpu_s: float
    load: str  # /proc/loadavg when the step started

    @property
    def offered(self) -> float:
        return self.replies / self.interval

    @property
    def achieved(self) -> float:
        return self.acknowledged / self.seconds

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def ok(self) -> bool:
        return (
            self.error_count == 0
            and self.achieved >= MIN_ACHIEVED * self.offered
            and percentile(self.delta_ms, 99) <= MAX_DELTA_P99_MS
            and percentile(self.delivery_ms, 99) <= MAX_DELIVERY_P99_MS
        )


def percentile(values: list[float], q: int) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def _json(conn: Connection, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    status, data = await conn.request(method, path, None if body is None else orjson.dumps(body))
    if status // 100 != 2:
        raise RuntimeError(f"{method} {path} answered {status}: {data[:300]!r}")
    found: dict[str, Any] = orjson.loads(data)
    return found


async def probe_thread_filter(url: str, secret: str) -> bool:
    """Whether `GET /api/events?thread_id=` filters: another user's thread is 404 there, and a server that
    ignores the parameter opens the stream (200)."""
    owner = Connection(url, issue_token(secret, "stream_probe_owner", None))
    try:
        thread_id = (await _json(owner, "POST", "/api/threads", {"title": "probe"}))["id"]
    finally:
        owner.close()
    try:
        stream = await EventStream.open(url, f"/api/events?thread_id={thread_id}", issue_token(secret, "probe2", None))
    except HttpError as error:
        if " answered 404" in str(error):
            return True
        raise
    stream.close()
    return False


async def _start_replies(url: str, secret: str, prefix: str, n: int) -> list[Reply]:
    limit = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def start(i: int) -> Reply:
        user = f"{prefix}_{i}"
        token = issue_token(secret, user, None)
        conn = Connection(url, token)
        async with limit:
            try:
                thread_id = (await _json(conn, "POST", "/api/threads", {"title": f"streamed reply {i}"}))["id"]
                body = {"role": "assistant", "content": "", "status": "in_progress", "model": "bench"}
                message = await _json(conn, "POST", f"/api/threads/{thread_id}/messages", body)
            finally:
                conn.close()
        return Reply(user, token, thread_id, message["id"])

    return list(await asyncio.gather(*(start(i) for i in range(n))))


async def _watch(stream: EventStream, reply: Reply, errors: Counter[str]) -> None:
    expected = 0
    try:
        async for arrived, events in stream.events():
            for event in events:
                if event.type != "message.delta":
                    continue
                data = orjson.loads(event.data)
                if data["message_id"] != reply.message_id:
                    errors["event of another reply"] += 1
                    continue
                offset = data["offset"]
                if offset != expected:
                    errors["event out of order"] += 1
                expected = offset + len(data["text"])
                reply.arrived[offset] = arrived
    except HttpError:
        errors["stream cut"] += 1


async def _generate(
    url: str, reply: Reply, start: float, until: float, interval: float, errors: Counter[str], late: list[int]
) -> None:
    loop = asyncio.get_running_loop()
    conn = Connection(url, reply.token)
    path = f"/api/threads/{reply.thread_id}/messages/{reply.message_id}/deltas"
    k = 0
    try:
        while (due := start + k * interval) < until:
            k += 1
            now = loop.time()
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > interval:
                late[0] += 1
            offset = reply.length
            sent = loop.time()
            try:
                status, data = await asyncio.wait_for(
                    conn.request("POST", path, orjson.dumps({"offset": offset, "text": TEXT})), REQUEST_TIMEOUT
                )
            except (HttpError, TimeoutError):
                conn.close()
                errors["connection"] += 1
                continue
            answered = loop.time()
            if status == 200:
                reply.length = orjson.loads(data)["length"]
                reply.sent[offset] = (sent, answered)
            else:
                errors[f"HTTP {status}"] += 1
                if status == 409:  # resume where the server is, as a generator would
                    reply.length = orjson.loads(data).get("length", reply.length)
    finally:
        conn.close()


async def _check_and_close(url: str, replies: list[Reply], errors: Counter[str]) -> None:
    """Each reply's text must be exactly its acknowledged deltas; then it is closed, so the stale sweep does not
    end hundreds of replies during a later measurement."""
    limit = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def one(reply: Reply) -> None:
        conn = Connection(url, reply.token)
        path = f"/api/threads/{reply.thread_id}/messages/{reply.message_id}"
        async with limit:
            try:
                content = (await _json(conn, "GET", path))["content"]
                if content != TEXT * (reply.length // len(TEXT)) or len(content) != reply.length:
                    errors["stored text differs"] += 1
                await _json(conn, "PATCH", path, {"status": "completed", "finish_reason": "stop"})
            finally:
                conn.close()

    await asyncio.gather(*(one(r) for r in replies))


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def run_step(
    url: str,
    secret: str,
    *,
    prefix: str,
    replies: int,
    interval: float,
    seconds: float,
    filtered: bool,
    server_cpu: Callable[[], float],
) -> Step:
    load = load_average()
    loop = asyncio.get_running_loop()
    started = await _start_replies(url, secret, prefix, replies)
    errors: Counter[str] = Counter()
    limit = asyncio.Semaphore(SETUP_CONCURRENCY)

    async def watch(reply: Reply) -> EventStream:
        async with limit:
            query = f"?thread_id={reply.thread_id}" if filtered else ""
            return await EventStream.open(url, f"/api/events{query}", reply.token)

    streams = list(await asyncio.gather(*(watch(r) for r in started)))
    watchers = [asyncio.ensure_future(_watch(s, r, errors)) for s, r in zip(streams, started, strict=True)]
    late = [0]
    cpu, own_cpu = server_cpu(), time.process_time()
    start = loop.time() + 0.5
    until = start + seconds
    try:
        await asyncio.gather(*(
            _generate(url, r, start + interval * i / replies, until, interval, errors, late)
            for i, r in enumerate(started)
        ))  # fmt: skip
        for _ in range(round(DRAIN_SECONDS / 0.05)):  # the events of the last deltas
            if all(len(r.arrived) >= len(r.sent) for r in started):
                break
            await asyncio.sleep(0.05)
        cpu, own_cpu = server_cpu() - cpu, time.process_time() - own_cpu
    finally:
        for stream in streams:
            stream.close()
        for watcher in watchers:
            watcher.cancel()
        await asyncio.gather(*watchers, return_exceptions=True)
    delta_ms, delivery_ms, after_ack_ms = [], [], []
    for reply in started:
        for offset, (sent, answered) in reply.sent.items():
            delta_ms.append(1000 * (answered - sent))
            arrived = reply.arrived.get(offset)
            if arrived is None:
                errors["event missing"] += 1
            else:
                delivery_ms.append(1000 * (arrived - sent))
                after_ack_ms.append(1000 * (arrived - answered))
    await _check_and_close(url, started, errors)
    return Step(
        replies=replies, interval=interval, seconds=seconds, filtered=filtered,
        acknowledged=sum(len(r.sent) for r in started), errors=dict(errors), late=late[0], delta_ms=delta_ms,
        delivery_ms=delivery_ms, after_ack_ms=after_ack_ms, server_cpu_s=cpu, client_cpu_s=own_cpu, load=load,
    )  # fmt: skip


@dataclass
class Search:
    scenario: Step
    steps: list[Step]  # the rate steps, in the order run (the scenario not among them)
    halfway: Step | None = None  # the last step: halfway between the last rate that held and the first that did not

    @property
    def best(self) -> Step | None:
        """The highest offered rate that held every target."""
        passed = [s for s in [self.scenario, *self.steps] if s.ok]
        return max(passed, key=lambda s: s.offered) if passed else None


async def run(
    url: str,
    secret: str,
    *,
    replies: int,
    interval: float,
    seconds: float,
    step_seconds: float,
    rates: list[float],
    server_cpu: Callable[[], float],
    log: Callable[[str], None],
) -> Search:
    """The scenario, then the rate steps: up the ladder `rates` while every target holds (more replies at the
    same interval), then once halfway between the last that held and the first that did not. When the scenario
    itself misses, the ladder goes down instead (half, a quarter of its rate)."""
    filtered = await probe_thread_filter(url, secret)
    log(f"streaming: streams {'per thread (?thread_id=)' if filtered else 'per user (no ?thread_id= on this server)'}")
    tag = f"s{os.getpid()}"

    async def step(n: int, rate_replies: int, length: float) -> Step:
        result = await run_step(url, secret, prefix=f"{tag}_{n}", replies=rate_replies, interval=interval,
                                seconds=length, filtered=filtered, server_cpu=server_cpu)  # fmt: skip
        log(f"streaming {describe(result)}")
        return result

    scenario = await step(0, replies, seconds)
    steps: list[Step] = []
    held, missed = (scenario, None) if scenario.ok else (None, scenario)
    ladder = sorted(rates) if scenario.ok else [scenario.offered / 2, scenario.offered / 4]
    for rate in ladder:
        if scenario.ok and rate <= scenario.offered:
            continue
        result = await step(len(steps) + 1, max(1, round(rate * interval)), step_seconds)
        steps.append(result)
        if result.ok:
            held = result
            if not scenario.ok:
                break
        else:
            missed = result
            if scenario.ok:
                break
    if held is not None and missed is not None:
        middle = round((held.replies + missed.replies) / 2)
        if middle not in (held.replies, missed.replies):
            steps.append(await step(len(steps) + 1, middle, step_seconds))
            return Search(scenario, steps, steps[-1])
    return Search(scenario, steps)


def describe(s: Step) -> str:
    errors = ", ".join(f"{k} {v}" for k, v in sorted(s.errors.items())) or "no error"
    return (
        f"{s.replies} replies x 1/{s.interval:g} s for {s.seconds:g} s: offered {s.offered:,.0f}/s, achieved"
        f" {s.achieved:,.0f}/s, delta p50/p99 {percentile(s.delta_ms, 50):.1f}/{percentile(s.delta_ms, 99):.1f} ms,"
        f" delivery p50/p99 {percentile(s.delivery_ms, 50):.1f}/{percentile(s.delivery_ms, 99):.1f} ms, {errors},"
        f" {s.late} late; server CPU {s.server_cpu_s / max(s.acknowledged, 1) * 1000:.2f} ms/delta, client"
        f" {100 * s.client_cpu_s / s.seconds:.0f}% of a core; {'ok' if s.ok else 'MISS'}"
    )


def table(search: Search) -> list[str]:
    rows = [
        "| run | replies x 1 delta / interval | offered deltas/s | achieved deltas/s | errors | delta p50 / p99 ms"
        " | delivery p50 / p99 ms (send → event) | 200 → event p50 / p99 ms | server CPU ms/delta"
        " | client CPU | load at start | verdict |",
        "|---|---|---:|---:|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for n, s in enumerate([search.scenario, *search.steps]):
        name = f"scenario, {s.seconds:g} s" if n == 0 else f"step {n}, {s.seconds:g} s"
        name += " (halfway)" if s is search.halfway else ""
        errors = ", ".join(f"{k} {v}" for k, v in sorted(s.errors.items())) or "0"
        cpu = s.server_cpu_s / max(s.acknowledged, 1) * 1000
        rows.append(
            f"| {name} | {s.replies} x 40 chars / {s.interval * 1000:g} ms | {s.offered:,.0f} | {s.achieved:,.0f}"
            f" | {errors} | {percentile(s.delta_ms, 50):.1f} / **{percentile(s.delta_ms, 99):.1f}**"
            f" | {percentile(s.delivery_ms, 50):.1f} / **{percentile(s.delivery_ms, 99):.1f}**"
            f" | {percentile(s.after_ack_ms, 50):.1f} / {percentile(s.after_ack_ms, 99):.1f} | {cpu:.2f}"
            f" | {100 * s.client_cpu_s / s.seconds:.0f}% | {s.load} | {'ok' if s.ok else 'MISS'} |"
        )
    return rows


def summary(search: Search) -> dict[str, Any]:
    def one(s: Step) -> dict[str, Any]:
        return {
            "replies": s.replies, "interval": s.interval, "seconds": s.seconds, "filtered": s.filtered,
            "offered": s.offered, "achieved": s.achieved, "errors": s.errors, "late": s.late,
            "delta_p50_ms": percentile(s.delta_ms, 50), "delta_p99_ms": percentile(s.delta_ms, 99),
            "delivery_p50_ms": percentile(s.delivery_ms, 50), "delivery_p99_ms": percentile(s.delivery_ms, 99),
            "after_ack_p50_ms": percentile(s.after_ack_ms, 50), "after_ack_p99_ms": percentile(s.after_ack_ms, 99),
            "delta_max_ms": max(s.delta_ms, default=float("nan")),
            "delivery_mean_ms": statistics.fmean(s.delivery_ms) if s.delivery_ms else float("nan"),
            "server_cpu_s": s.server_cpu_s, "client_cpu_s": s.client_cpu_s, "load": s.load, "ok": s.ok,
        }  # fmt: skip

    best = search.best
    return {
        "scenario": one(search.scenario),
        "steps": [one(s) for s in search.steps],
        "best_rate": best.offered if best else None,
    }
