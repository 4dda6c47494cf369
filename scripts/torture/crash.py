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
from scripts.torture.reply_audit import TAG, Reply, audit_replies, trace
from tests.harness.processes import ServeProcess

Killer = Callable[[], Coroutine[Any, Any, None]]

# Settings of the servers under the crash load: a reply left unfinished (a generator that gave up, or never
# closes) is ended by the stale sweep within the round, so the sweep runs, and is killed, among the writes.
SETTINGS = {"stale_message_seconds": 6}


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
    replies: Counter[str] = field(default_factory=Counter)  # streamed replies: see reply_audit.audit_replies

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
    # Branches: what a delete may have taken, and the forks (new threads, never written to afterwards).
    delete_targets: set[str] = field(default_factory=set)  # every message a delete was sent for
    deleted: set[str] = field(default_factory=set)  # acknowledged deletes
    deleting: set[str] = field(default_factory=set)  # threads a delete was sent to
    forks: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # title -> (source, message_id)
    forked: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> acknowledged fork
    # Streamed replies: what each generator sent and was told (scripts/torture/reply_audit.py).
    replies: dict[str, Reply] = field(default_factory=dict)  # message id -> reply


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

    async def _send(
        self, method: str, path: str, user: str, *, gone_ok: bool = False, refused: int = 0, **kwargs: Any
    ) -> httpx.Response | None:
        """The response of a 2xx (or, `gone_ok`, of a 404/422 when a message the request names may have been
        deleted meanwhile; or of a `refused` status, which the caller judges); None when the outcome is unknown
        or the answer is a violation."""
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
        if gone_ok and response.status_code in (404, 422) and self.ledger.delete_targets:
            return response
        if response.status_code == refused:
            return response
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
            if choice < 0.3 or not self.ledger.threads:
                await self._create()
            elif choice < 0.5:
                await self._append()
            elif choice < 0.6:
                await self._stream()
            elif choice < 0.7:
                await self._patch()
            elif choice < 0.8:
                await self._branch_append()
            elif choice < 0.87:
                await self._switch()
            elif choice < 0.93:
                await self._delete()
            else:
                await self._fork()

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

    async def _stream(self) -> None:
        """A generator: starts an in_progress reply, streams 1-6 deltas into it (each sent again, unchanged,
        until answered: a retry of a stored delta is answered as the first time), then mostly closes it with a
        PATCH (sent again until answered too); after an acknowledged close, a new delta must be refused."""
        thread_id = random.choice(list(self.ledger.threads))
        user = self.ledger.owners[thread_id]
        start = f"{TAG}{uuid.uuid4().hex}"
        self.ledger.appends[start] = thread_id
        body = {"role": "assistant", "content": start, "status": "in_progress", "model": "torture"}
        started = await self._send("POST", f"/api/threads/{thread_id}/messages", user, json=body)
        if started is None:
            return
        message = started.json()
        self.ledger.messages[message["id"]] = message
        reply = self.ledger.replies[message["id"]] = Reply(thread_id, user, start)
        url = f"/api/threads/{thread_id}/messages/{message['id']}"
        for step in range(random.randint(1, 6)):
            offset, text = len(reply.text), f"<{step}.{uuid.uuid4().hex[:8]}>"
            answer = await self._until_answered("POST", f"{url}/deltas", user, json={"offset": offset, "text": text})
            if answer is None:
                reply.pending = text
                return
            if answer.status_code != 200:
                reply.swept = answer.status_code == 409  # 404: a branch delete took it
                return
            expected = {"object": "message.delta", "message_id": message["id"], "offset": offset}
            expected["length"] = offset + len(text)
            self.result.expect(answer.json() == expected, f"a delta answered {answer.text[:200]}")
            reply.acked.append((offset, text))
        if random.random() < 0.3:
            return  # left unfinished: the stale sweep ends it
        status = random.choice(["completed", "incomplete"])
        reply.closing = {"status": status, "finish_reason": "stop" if status == "completed" else "cancelled"}
        usage = {"input_tokens": 9, "output_tokens": len(reply.acked)}
        answer = await self._until_answered("PATCH", url, user, json={**reply.closing, "usage": usage})
        if answer is None or answer.status_code != 200:
            reply.swept = answer is not None and answer.status_code == 409
            return
        reply.closed = answer.json()
        # A reply closed takes no delta; its last one, sent again, is still answered as the first time.
        late = await self._send(
            "POST", f"{url}/deltas", user, gone_ok=True, refused=409, json={"offset": 0, "text": "late"}
        )
        if late is not None and late.status_code != 404:  # 404: a branch delete took the reply meanwhile
            refused = late.status_code == 409 and late.json().get("reason") == "state"
            self.result.expect(refused, f"a delta after the close answered {late.status_code}")
        if reply.acked:
            offset, text = reply.acked[-1]
            # gone_ok: a branch delete may take the reply meanwhile (404), as for any message the load names.
            again = await self._send("POST", f"{url}/deltas", user, gone_ok=True, json={"offset": offset, "text": text})
            ok = again is None or again.status_code == 404 or again.json()["length"] == offset + len(text)
            self.result.expect(ok, "a delta sent again after the close was not answered as the first time")

    async def _until_answered(self, method: str, path: str, user: str, **kwargs: Any) -> httpx.Response | None:
        """The same request, sent until the server answers it (through kills and restarts): the answer, 409 and
        404 included (the caller judges them); None if the load stopped first."""
        violations = len(self.result.violations)
        while not self.stop.is_set():
            response = await self._send(method, path, user, gone_ok=True, refused=409, **kwargs)
            if response is not None:
                return response
            if len(self.result.violations) > violations:
                return None  # answered, wrongly: counted already
        return None

    async def _patch(self) -> None:
        thread_id = random.choice(list(self.ledger.threads))
        user = self.ledger.owners[thread_id]
        key, value = f"p-{uuid.uuid4().hex[:16]}", random.randrange(1_000_000)
        response = await self._send("PATCH", f"/api/threads/{thread_id}", user, json={"metadata": {key: value}})
        if response is not None:
            self.ledger.patches.append((user, thread_id, key, value))

    def _known_message(self, thread_id: str) -> dict[str, Any] | None:
        """An acknowledged message of the thread not deleted by an acknowledged delete (it may be gone anyway)."""
        known = [m for m in self.ledger.messages.values() if m["thread_id"] == thread_id]
        return random.choice(known) if known else None

    async def _branch_append(self) -> None:
        """An append naming its parent (an acknowledged message, or None for a new root): a branch when the
        parent already has a child."""
        thread_id = random.choice(list(self.ledger.threads))
        user = self.ledger.owners[thread_id]
        parent = self._known_message(thread_id)
        content = f"b-{uuid.uuid4().hex}"
        body = {"role": "assistant", "content": content, "parent_id": parent["id"] if parent else None}
        self.ledger.appends[content] = thread_id
        path = f"/api/threads/{thread_id}/messages"
        keyed = self._keyed(user, path, body)
        response = await self._send("POST", path, user, json=body, headers=self._key_header(keyed), gone_ok=True)
        self._settle(keyed, response)
        if response is not None and response.status_code == 201:
            message = response.json()
            self.ledger.messages[message["id"]] = message

    async def _switch(self) -> None:
        thread_id = random.choice(list(self.ledger.threads))
        target = self._known_message(thread_id)
        if target is None:
            return
        body = {"current_message_id": target["id"]}
        await self._send("PATCH", f"/api/threads/{thread_id}", self.ledger.owners[thread_id], json=body, gone_ok=True)

    async def _delete(self) -> None:
        thread_id = random.choice(list(self.ledger.threads))
        target = self._known_message(thread_id)
        if target is None:
            return
        self.ledger.delete_targets.add(target["id"])
        self.ledger.deleting.add(thread_id)
        path = f"/api/threads/{thread_id}/messages/{target['id']}"
        response = await self._send("DELETE", path, self.ledger.owners[thread_id], gone_ok=True)
        if response is not None and response.status_code == 204:
            self.ledger.deleted.add(target["id"])

    async def _fork(self) -> None:
        thread_id = random.choice(list(self.ledger.threads))
        user = self.ledger.owners[thread_id]
        title = f"f-{uuid.uuid4().hex}"
        named = self._known_message(thread_id) if random.random() < 0.5 else None
        body: dict[str, Any] = {"title": title, **({"message_id": named["id"]} if named else {})}
        self.ledger.forks[title] = (thread_id, named["id"] if named else None)
        path = f"/api/threads/{thread_id}/fork"
        keyed = self._keyed(user, path, body)
        response = await self._send("POST", path, user, json=body, headers=self._key_header(keyed), gone_ok=True)
        self._settle(keyed, response)
        if response is not None and response.status_code == 201:
            fork = response.json()
            self.ledger.forked[fork["id"]] = fork
            self.ledger.owners[fork["id"]] = user

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
        elif response.status_code < 300:
            keyed.status, keyed.content = response.status_code, response.content
            self.ledger.keyed.append(keyed)


async def audit(client: Client, db: Inspector, ledger: Ledger, result: CrashResult) -> None:
    """Checks the database and the API against every acknowledged answer and every attempted write."""
    await _audit_structure(db, ledger, result)
    await _audit_acknowledged(client, ledger, result)
    await _audit_idempotent_retries(client, db, ledger, result)
    stored = [row["id"] for row in await db.threads_of(ledger.users)]
    for violation in await db.reply_violations(stored):
        result.expect(False, violation)


async def _audit_structure(db: Inspector, ledger: Ledger, result: CrashResult) -> None:
    threads = await db.threads_of(ledger.users)
    by_thread: dict[str, list[dict[str, Any]]] = {row["id"]: [] for row in threads}
    for message in await db.messages_of(list(by_thread)):
        by_thread[message["thread_id"]].append(message)
    for violation in await db.tree_violations(list(by_thread)):
        result.expect(False, violation)
    titles = Counter(row["title"] for row in threads)
    result.expect(max(titles.values(), default=1) == 1, f"a create landed twice: {titles.most_common(3)}")
    forks = [row for row in threads if row["title"] in ledger.forks]
    threads = [row for row in threads if row["title"] not in ledger.forks]
    contents = Counter(trace(m["content"]) for row in threads for m in by_thread[row["id"]])
    result.expect(max(contents.values(), default=1) == 1, f"a message landed twice: {contents.most_common(3)}")
    for row in threads:
        stored = sorted(by_thread[row["id"]], key=lambda m: m["seq"])
        if row["id"] not in ledger.deleting:  # a branch delete leaves seqs with gaps (they are never reused)
            seqs = [m["seq"] for m in stored]
            result.expect(seqs == list(range(1, len(stored) + 1)), f"thread {row['id']}: seqs {seqs[:20]}… have a gap")
            result.expect(row["message_count"] == len(stored), f"thread {row['id']}: message_count != {len(stored)}")
        sent = ledger.creates.get(row["title"])
        if sent is None:
            result.expect(False, f"thread {row['id']} matches no request")
            continue
        initial = [(m["role"], m["content"]) for m in sent.get("messages", [])]
        head = [(m["role"], m["content"]) for m in stored[: len(initial)]]
        if row["id"] not in ledger.deleting:
            result.expect(head == initial, f"thread {row['id']} lacks its initial messages: {head} != {initial}")
        for message in stored:
            if (message["role"], message["content"]) in initial:
                continue
            result.expect(
                ledger.appends.get(trace(message["content"])) == row["id"], f"message {message['id']} matches no append"
            )
    await _audit_forks(db, ledger, result, forks, by_thread)


async def _audit_forks(
    db: Inspector,
    ledger: Ledger,
    result: CrashResult,
    forks: list[dict[str, Any]],
    by_thread: dict[str, list[dict[str, Any]]],
) -> None:
    """A fork holds a chain that is its source's path to one message: the named one, else one that was current.
    Paths never change, so while that message is still there its path is the copy's, in content and order."""
    for row in forks:
        source, named = ledger.forks[row["title"]]
        copied = sorted(by_thread[row["id"]], key=lambda m: m["seq"])
        chain = [m["parent_id"] for m in copied] == [None, *(m["id"] for m in copied)][: len(copied)]
        result.expect(chain, f"fork {row['id']}: its messages are no chain")
        if not copied:
            continue
        last = copied[-1]["content"]
        # A copied reply holds its text as it stood then: its source is found by its starting text.
        original = await db.rows(
            "SELECT id, parent_id, role, content FROM messages WHERE thread_id = :t AND content "
            + ("LIKE :c" if last.startswith(TAG) else "= :c"),
            t=source,
            c=trace(last) + "%" if last.startswith(TAG) else last,
        )
        if not original:
            result.expect(source in ledger.deleting, f"fork {row['id']}: its last message is none of its source's")
            continue
        result.expect(named in (None, original[0]["id"]), f"fork {row['id']} did not copy the path to {named}")
        path: list[dict[str, Any]] = []
        at: dict[str, Any] | None = original[0]
        while at is not None:
            path.append(at)
            parent = at["parent_id"]
            rows = await db.rows("SELECT id, parent_id, role, content FROM messages WHERE id = :p", p=parent)
            at = rows[0] if parent is not None and rows else None
        path.reverse()
        ok = [(m["role"], trace(m["content"])) for m in path] == [(m["role"], trace(m["content"])) for m in copied]
        result.expect(ok, f"fork {row['id']} is not its source's path to {original[0]['id']}")
        for source_message, copy in zip(path, copied, strict=False):
            result.expect(copy["status"] != "in_progress", f"fork {row['id']}: a copy is still in_progress")
            if copy["content"].startswith(TAG):
                grown = await db.rows(
                    "SELECT text FROM message_deltas WHERE message_id = :m ORDER BY start", m=source_message["id"]
                )
                whole = source_message["content"] + "".join(r["text"] for r in grown)
                result.expect(whole.startswith(copy["content"]), f"fork {row['id']}: a copied reply is not its text")


async def _audit_acknowledged(client: Client, ledger: Ledger, result: CrashResult) -> None:
    gate = asyncio.Semaphore(16)
    patches: dict[str, dict[str, Any]] = {}
    for _user, thread_id, key, value in ledger.patches:
        patches.setdefault(thread_id, {})[key] = value
    messages_of: dict[str, list[dict[str, Any]]] = {}
    for message in ledger.messages.values():
        messages_of.setdefault(message["thread_id"], []).append(message)

    def may_be_deleted(message: dict[str, Any]) -> bool:
        """Whether a delete was sent for the message or a message above it. Its parents are followed through
        the acknowledged messages; past one whose parent is not known (an initial message, an append whose
        answer was lost) the question is left open where the thread saw a delete."""
        at: dict[str, Any] | None = message
        while at is not None:
            if at["id"] in ledger.delete_targets:
                return True
            parent = at["parent_id"]
            if parent is None:
                return False
            at = ledger.messages.get(parent)
        return message["thread_id"] in ledger.deleting

    async def one(thread_id: str, acknowledged: dict[str, Any]) -> None:
        user = ledger.owners[thread_id]
        async with gate:
            now = await client.request("GET", f"/api/threads/{thread_id}", user)
            listed = await _list_messages(client, user, thread_id, view="all")
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
            seen = by_id.get(message["id"])
            if seen is None and may_be_deleted(message):
                continue
            if message["id"] in ledger.replies:  # grown and ended since its 201: audited by audit_replies
                result.expect(message["id"] not in ledger.deleted, f"reply {message['id']} outlived its delete")
                continue
            # sibling_count is "as of the response": later siblings raise it.
            same = seen is not None and {**seen, "sibling_count": 0} == {**message, "sibling_count": 0}
            result.expect(same, f"acknowledged message {message['id']} differs")
            result.expect(message["id"] not in ledger.deleted, f"message {message['id']} outlived its delete")

    await asyncio.gather(*(one(thread_id, thread) for thread_id, thread in ledger.threads.items()))
    result.replies += await audit_replies(
        client, ledger.replies, lambda message_id: may_be_deleted(ledger.messages[message_id]), result.expect
    )

    async def fork(fork_id: str, acknowledged: dict[str, Any]) -> None:
        async with gate:
            now = await client.request("GET", f"/api/threads/{fork_id}", ledger.owners[fork_id])
        # Nothing writes to a fork after its creation: it is as answered.
        same = now.status_code == 200 and now.json() == acknowledged
        result.expect(same, f"acknowledged fork {fork_id} is {now.status_code}, or differs")

    await asyncio.gather(*(fork(fork_id, thread) for fork_id, thread in ledger.forked.items()))


async def _list_messages(client: Client, user: str, thread_id: str, **selector: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **selector, **({"cursor": cursor} if cursor else {})}
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

    def source(keyed: Keyed) -> str:
        return keyed.path.split("/")[3] if keyed.path.count("/") > 3 else ""

    answers = await asyncio.gather(*(retry(keyed) for keyed in ledger.keyed))
    for keyed, answer in zip(ledger.keyed, answers, strict=True):
        same = answer.status_code == keyed.status and answer.content == keyed.content
        # A key whose message a delete took is not replayed: 404, and nothing is created.
        erased = answer.status_code == 404 and keyed.path.endswith("/messages") and source(keyed) in ledger.deleting
        result.expect(
            same or erased, f"retry of acknowledged {keyed.key} answered {answer.status_code}, not the original"
        )
    answers = await asyncio.gather(*(retry(keyed) for keyed in ledger.unanswered))
    landed: list[Keyed] = []
    for keyed, answer in zip(ledger.unanswered, answers, strict=True):
        if answer.status_code == 201:
            landed.append(keyed)
            continue
        # Its message deleted since it landed (404), or the message it names deleted before it could (422).
        gone = answer.status_code in (404, 422) and source(keyed) in ledger.deleting
        result.expect(gone, f"retry of unanswered {keyed.key} answered {answer.status_code}")
        what = keyed.body.get("title") or keyed.body.get("content")
        rows = await db.rows(
            "SELECT count(*) AS n FROM threads WHERE title = :w UNION ALL "
            "SELECT count(*) AS n FROM messages WHERE content = :w AND thread_id = :t",
            w=what,
            t=source(keyed),
        )
        result.expect(sum(int(r["n"]) for r in rows) == 0, f"retry of unanswered {keyed.key} failed, yet it wrote")
    titles = [k.body["title"] for k in landed if "title" in k.body]
    contents = [k.body["content"] for k in landed if "content" in k.body]
    if titles:
        rows = await db.rows("SELECT title, count(*) AS n FROM threads WHERE title IN :t GROUP BY title", t=titles)
        counts = {row["title"]: int(row["n"]) for row in rows}
        for title in titles:
            result.expect(counts.get(title) == 1, f"{counts.get(title, 0)} threads for retried create {title}")
    if contents:
        rows = await db.rows(
            "SELECT content, thread_id, count(*) AS n FROM messages WHERE content IN :c GROUP BY content, thread_id",
            c=contents,
        )
        # Counted in the thread appended to: a fork may hold a copy too.
        counts = {
            row["content"]: int(row["n"]) for row in rows if ledger.appends.get(row["content"]) == row["thread_id"]
        }
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
