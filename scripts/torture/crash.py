"""The acknowledged-write audit: a write load runs while the server (or PostgreSQL) is killed at random
moments and restarted; afterwards every write that was answered 2xx must be present exactly as answered,
and nothing may be half-written.

The load is shaped so the audit can be exact: every created thread has a unique title and every message a
unique content, so even a write whose answer was lost (in flight at the kill) can be traced to its request;
patches only add metadata keys of their own, so an acknowledged patch stays visible whatever landed later.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
from scripts.torture.client import Client, new_user
from scripts.torture.dbview import Inspector
from tests.harness.processes import ServeProcess

Killer = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class Keyed:
    user: str
    path: str
    key: str
    body: dict[str, Any]
    status: int = 0
    content: bytes = b""


@dataclass
class CrashResult:
    name: str
    operations: int = 0
    acknowledged: int = 0
    unknown: int = 0  # in flight at a kill, or refused while a component was down (503)
    kills: int = 0
    audited: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    def expect(self, condition: bool, message: str) -> None:
        self.audited += 1
        if not condition:
            self.violations.append(f"{self.name}: {message}")


@dataclass
class Ledger:
    users: list[str]
    creates: dict[str, dict[str, Any]] = field(default_factory=dict)  # title -> request body (every attempt)
    appends: dict[str, str] = field(default_factory=dict)  # content -> thread id (every attempt)
    threads: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> acknowledged thread
    owners: dict[str, str] = field(default_factory=dict)  # acknowledged thread id -> user
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> acknowledged message
    patches: list[tuple[str, str, str, Any]] = field(default_factory=list)  # (user, thread, key, value)
    keyed: list[Keyed] = field(default_factory=list)  # acknowledged idempotent requests
    unanswered: list[Keyed] = field(default_factory=list)  # idempotent requests with unknown outcome


class Load:
    def __init__(self, client: Client, result: CrashResult, workers: int) -> None:
        self.client = client
        self.result = result
        self.workers = workers
        self.ledger = Ledger(users=[new_user("crash") for _ in range(4)])
        self.stop = asyncio.Event()

    async def run(self, killer: Killer, duration: float, min_kills: int = 0) -> None:
        tasks = [asyncio.create_task(self._worker()) for _ in range(self.workers)]
        killing = asyncio.create_task(killer())
        try:
            await asyncio.sleep(duration)
            # On a slow, shared machine restarts take longer: run on until the promised kills happened.
            for _ in range(600):
                if self.result.kills >= min_kills or killing.done():
                    break
                await asyncio.sleep(0.1)
        finally:
            self.stop.set()
            await asyncio.gather(*tasks, killing)

    async def _send(self, method: str, path: str, user: str, **kwargs: Any) -> httpx.Response | None:
        self.result.operations += 1
        try:
            response = await self.client.request(method, path, user, **kwargs)
        except httpx.TransportError:
            self.result.unknown += 1
            await asyncio.sleep(random.uniform(0.02, 0.2))  # the server is down: do not spin
            return None
        self.result.statuses[response.status_code] += 1
        if response.status_code >= 500:
            self.result.unknown += 1
            if response.status_code != 503:
                self.result.violations.append(f"{self.result.name}: {method} {path} answered {response.status_code}")
            await asyncio.sleep(random.uniform(0.02, 0.2))
            return None
        if response.status_code >= 300:
            self.result.violations.append(
                f"{self.result.name}: {method} {path} answered {response.status_code}: {response.text[:200]}"
            )
            return None
        self.result.acknowledged += 1
        return response

    async def _worker(self) -> None:
        while not self.stop.is_set():
            choice = random.random()
            if choice < 0.35 or not self.ledger.threads:
                await self._create()
            elif choice < 0.8:
                await self._append()
            else:
                await self._patch()

    async def _create(self) -> None:
        user = random.choice(self.ledger.users)
        title = f"c-{uuid.uuid4().hex}"
        body: dict[str, Any] = {"title": title, "metadata": {"origin": title}}
        count = random.choice([0, 1, 2, 3, 5])
        if count:
            body["messages"] = [
                {"role": random.choice(["user", "assistant"]), "content": f"{title}-m{i}"} for i in range(count)
            ]
        self.ledger.creates[title] = body
        keyed = self._keyed(user, "/api/threads", body)
        response = await self._send("POST", "/api/threads", user, json=body, headers=self._key_header(keyed))
        self._settle(keyed, response)
        if response is not None:
            thread = response.json()
            self.ledger.threads[thread["id"]] = thread
            self.ledger.owners[thread["id"]] = user

    async def _append(self) -> None:
        thread_id = random.choice(list(self.ledger.threads))
        user = self.ledger.owners[thread_id]
        content = f"a-{uuid.uuid4().hex}"
        body = {"role": random.choice(["user", "assistant", "tool"]), "content": content}
        self.ledger.appends[content] = thread_id
        path = f"/api/threads/{thread_id}/messages"
        keyed = self._keyed(user, path, body)
        response = await self._send("POST", path, user, json=body, headers=self._key_header(keyed))
        self._settle(keyed, response)
        if response is not None:
            message = response.json()
            self.ledger.messages[message["id"]] = message

    async def _patch(self) -> None:
        thread_id = random.choice(list(self.ledger.threads))
        user = self.ledger.owners[thread_id]
        key, value = f"p-{uuid.uuid4().hex[:16]}", random.randrange(1_000_000)
        response = await self._send("PATCH", f"/api/threads/{thread_id}", user, json={"metadata": {key: value}})
        if response is not None:
            self.ledger.patches.append((user, thread_id, key, value))

    def _keyed(self, user: str, path: str, body: dict[str, Any]) -> Keyed | None:
        return Keyed(user, path, f"k-{uuid.uuid4().hex}", body) if random.random() < 0.4 else None

    @staticmethod
    def _key_header(keyed: Keyed | None) -> dict[str, str]:
        return {"Idempotency-Key": keyed.key} if keyed else {}

    def _settle(self, keyed: Keyed | None, response: httpx.Response | None) -> None:
        if keyed is None:
            return
        if response is None:
            self.ledger.unanswered.append(keyed)
        else:
            keyed.status, keyed.content = response.status_code, response.content
            self.ledger.keyed.append(keyed)


async def audit(client: Client, db: Inspector, ledger: Ledger, result: CrashResult) -> None:
    """Checks the database and the API against every acknowledged answer and every attempted write."""
    await _audit_structure(db, ledger, result)
    await _audit_acknowledged(client, ledger, result)
    await _audit_idempotent_retries(client, db, ledger, result)


async def _audit_structure(db: Inspector, ledger: Ledger, result: CrashResult) -> None:
    threads = await db.threads_of(ledger.users)
    by_thread: dict[str, list[dict[str, Any]]] = {row["id"]: [] for row in threads}
    for message in await db.messages_of(list(by_thread)):
        by_thread[message["thread_id"]].append(message)
    titles = Counter(row["title"] for row in threads)
    result.expect(max(titles.values(), default=1) == 1, f"a create landed twice: {titles.most_common(3)}")
    contents = Counter(m["content"] for ms in by_thread.values() for m in ms)
    result.expect(max(contents.values(), default=1) == 1, f"a message landed twice: {contents.most_common(3)}")
    for row in threads:
        stored = sorted(by_thread[row["id"]], key=lambda m: m["seq"])
        seqs = [m["seq"] for m in stored]
        result.expect(seqs == list(range(1, len(stored) + 1)), f"thread {row['id']}: seqs {seqs[:20]}… have a gap")
        result.expect(row["message_count"] == len(stored), f"thread {row['id']}: message_count != {len(stored)}")
        sent = ledger.creates.get(row["title"])
        if sent is None:
            result.expect(False, f"thread {row['id']} matches no request")
            continue
        initial = [(m["role"], m["content"]) for m in sent.get("messages", [])]
        head = [(m["role"], m["content"]) for m in stored[: len(initial)]]
        result.expect(head == initial, f"thread {row['id']} lacks its initial messages: {head} != {initial}")
        for message in stored[len(initial) :]:
            result.expect(
                ledger.appends.get(message["content"]) == row["id"], f"message {message['id']} matches no append"
            )


async def _audit_acknowledged(client: Client, ledger: Ledger, result: CrashResult) -> None:
    gate = asyncio.Semaphore(16)
    patches: dict[str, dict[str, Any]] = {}
    for _user, thread_id, key, value in ledger.patches:
        patches.setdefault(thread_id, {})[key] = value
    messages_of: dict[str, list[dict[str, Any]]] = {}
    for message in ledger.messages.values():
        messages_of.setdefault(message["thread_id"], []).append(message)

    async def one(thread_id: str, acknowledged: dict[str, Any]) -> None:
        user = ledger.owners[thread_id]
        async with gate:
            now = await client.request("GET", f"/api/threads/{thread_id}", user)
            listed = await _list_messages(client, user, thread_id)
        result.expect(now.status_code == 200, f"acknowledged thread {thread_id} is {now.status_code}")
        if now.status_code != 200:
            return
        thread = now.json()
        for name in ("id", "object", "title", "created_at"):
            result.expect(thread[name] == acknowledged[name], f"thread {thread_id}.{name} changed")
        for key, value in {**acknowledged["metadata"], **patches.get(thread_id, {})}.items():
            result.expect(thread["metadata"].get(key) == value, f"thread {thread_id}: metadata {key} lost")
        result.expect(thread["message_count"] == len(listed), f"thread {thread_id}: message_count != listed")
        by_id = {m["id"]: m for m in listed}
        for message in messages_of.get(thread_id, []):
            result.expect(by_id.get(message["id"]) == message, f"acknowledged message {message['id']} differs")

    await asyncio.gather(*(one(thread_id, thread) for thread_id, thread in ledger.threads.items()))


async def _list_messages(client: Client, user: str, thread_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await client.request("GET", f"/api/threads/{thread_id}/messages", user, params=params)).json()
        found += page["data"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return found


async def _audit_idempotent_retries(client: Client, db: Inspector, ledger: Ledger, result: CrashResult) -> None:
    """A client retrying after the crash: an acknowledged request gets its first answer back byte for byte; a
    request whose answer was lost gets a 2xx now, and exactly one object exists for it either way."""
    gate = asyncio.Semaphore(16)

    async def retry(keyed: Keyed) -> httpx.Response:
        async with gate:
            return await client.request(
                "POST", keyed.path, keyed.user, json=keyed.body, headers={"Idempotency-Key": keyed.key}
            )

    answers = await asyncio.gather(*(retry(keyed) for keyed in ledger.keyed))
    for keyed, answer in zip(ledger.keyed, answers, strict=True):
        same = answer.status_code == keyed.status and answer.content == keyed.content
        result.expect(same, f"retry of acknowledged {keyed.key} answered {answer.status_code}, not the original")
    answers = await asyncio.gather(*(retry(keyed) for keyed in ledger.unanswered))
    for keyed, answer in zip(ledger.unanswered, answers, strict=True):
        result.expect(answer.status_code == 201, f"retry of unanswered {keyed.key} answered {answer.status_code}")
    titles = [k.body["title"] for k in ledger.unanswered if "title" in k.body]
    contents = [k.body["content"] for k in ledger.unanswered if "content" in k.body]
    if titles:
        rows = await db.rows("SELECT title, count(*) AS n FROM threads WHERE title IN :t GROUP BY title", t=titles)
        counts = {row["title"]: int(row["n"]) for row in rows}
        for title in titles:
            result.expect(counts.get(title) == 1, f"{counts.get(title, 0)} threads for retried create {title}")
    if contents:
        rows = await db.rows(
            "SELECT content, count(*) AS n FROM messages WHERE content IN :c GROUP BY content", c=contents
        )
        counts = {row["content"]: int(row["n"]) for row in rows}
        for content in contents:
            result.expect(counts.get(content) == 1, f"{counts.get(content, 0)} messages for retried append")


async def run_crash_audit(
    name: str,
    server: ServeProcess,
    db: Inspector,
    *,
    duration: float,
    kill: Callable[[CrashResult], Awaitable[None]],
    interval: tuple[float, float] = (1.0, 3.0),
    workers: int = 12,
    min_kills: int = 0,
) -> CrashResult:
    """Runs the load for `duration` seconds, calling `kill` at random intervals, then audits."""
    result = CrashResult(name)
    client = Client(server.base_url, connections=workers + 16)
    load = Load(client, result, workers)

    async def killer() -> None:
        while not load.stop.is_set():
            try:
                await asyncio.wait_for(load.stop.wait(), random.uniform(*interval))
            except TimeoutError:
                await kill(result)

    try:
        if not server.running:
            await server.start()
        await load.run(killer, duration, min_kills)
        if not server.running:
            await server.start()
        await server.wait_ready()
        await audit(client, db, load.ledger, result)
    finally:
        await client.aclose()
    return result


def server_killer(server: ServeProcess) -> Callable[[CrashResult], Awaitable[None]]:
    """SIGKILL the server process, then start it again (a supervisor's restart)."""

    async def kill(result: CrashResult) -> None:
        await server.kill()
        result.kills += 1
        await asyncio.sleep(random.uniform(0.0, 0.5))
        await server.start()

    return kill


def postgres_killer(stop: Callable[[], None], start: Callable[[], None]) -> Callable[[CrashResult], Awaitable[None]]:
    """Stops PostgreSQL with `-m immediate` (no checkpoint, no clean shutdown: crash recovery at the next
    start), then starts it again; the server stays up and answers 503 meanwhile."""

    async def kill(result: CrashResult) -> None:
        await asyncio.to_thread(stop)
        result.kills += 1
        await asyncio.sleep(random.uniform(0.2, 1.0))
        await asyncio.to_thread(start)

    return kill
