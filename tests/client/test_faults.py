"""Item 5: the server SIGKILLed at random moments and restarted while clients write. With the client's retries
every call returns once or raises, the thread holds each acknowledged message exactly once (and nothing
twice), and a streamed reply's text is exactly its chunks joined — sync clients in threads and async tasks,
on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field

from tests.harness.processes import ServeProcess
from threadstore_client import AsyncClient, Client, Message, ThreadstoreError

from .conftest import PATIENT, token_of

CALLERS = 3  # of each kind: sync clients in threads, async tasks
APPENDS = 40  # per caller
KILLS = 4
CHUNKS = 3_000


@dataclass
class Ledger:
    """What the callers were told: each call's content, and the message it got back or the error it raised."""

    acknowledged: dict[str, Message] = field(default_factory=dict)
    raised: dict[str, BaseException] = field(default_factory=dict)

    def settle(self, content: str, outcome: Message | BaseException) -> None:
        assert content not in self.acknowledged and content not in self.raised, "a call returned twice"
        if isinstance(outcome, Message):
            self.acknowledged[content] = outcome
        else:
            self.raised[content] = outcome


async def _killer(server: ServeProcess, stop: asyncio.Event, seed: int) -> int:
    """SIGKILLs the server at random moments (KILLS times, or until `stop`) and starts it again each time."""
    chance = random.Random(seed)
    kills = 0
    while kills < KILLS and not stop.is_set():
        await asyncio.sleep(chance.uniform(0.1, 0.6))
        await server.kill()
        kills += 1
        await asyncio.sleep(chance.uniform(0.0, 0.3))
        await server.start()
    return kills


def _check(thread_messages: list[Message], ledger: Ledger) -> None:
    counts = Counter(m.content for m in thread_messages)
    assert [c for c, n in counts.items() if n > 1] == [], "a message stored twice"
    stored = {m.content: m for m in thread_messages}
    for content, message in ledger.acknowledged.items():
        assert stored.get(content) == message, f"acknowledged {content!r} missing or different"
    assert set(stored) <= set(ledger.acknowledged) | set(ledger.raised), "a message nobody sent"


async def test_a_burst_of_appends_survives_kills_and_stores_each_acknowledged_message_once(
    killable: ServeProcess, user: str
) -> None:
    seed = random.randrange(1 << 30)
    token = token_of(user)
    ledger = Ledger()
    with Client(killable.base_url, token, retry=PATIENT) as sync_client:
        thread = sync_client.threads.create(title="burst")

        def sync_caller(n: int) -> None:
            for i in range(APPENDS):
                content = f"sync {n}.{i}"
                try:
                    ledger.settle(content, sync_client.messages.append(thread.id, content))
                except ThreadstoreError as error:
                    ledger.settle(content, error)

        async def async_caller(client: AsyncClient, n: int) -> None:
            for i in range(APPENDS):
                content = f"async {n}.{i}"
                try:
                    ledger.settle(content, await client.messages.append(thread.id, content))
                except ThreadstoreError as error:
                    ledger.settle(content, error)

        stop = asyncio.Event()
        async with AsyncClient(killable.base_url, token, retry=PATIENT) as async_client:
            killer = asyncio.ensure_future(_killer(killable, stop, seed))
            await asyncio.gather(
                *(asyncio.to_thread(sync_caller, n) for n in range(CALLERS)),
                *(async_caller(async_client, n) for n in range(CALLERS)),
            )
            stop.set()
            kills = await killer
            stored = [m async for m in async_client.messages.list_all(thread.id, view="all", limit=100)]
    assert len(ledger.acknowledged) + len(ledger.raised) == 2 * CALLERS * APPENDS, "every call returned or raised"
    assert kills >= 1, f"the server was never killed (seed {seed})"
    _check(stored, ledger)
    # A patient client outlasts each restart: nothing should have had to raise.
    assert ledger.raised == {}, f"seed {seed}: {ledger.raised}"


def _chunks(prefix: str) -> Iterator[str]:
    for n in range(CHUNKS):
        time.sleep(0.0005)  # a model's pace, so kills land mid-reply
        yield f"{prefix}{n}" + "é🙂 "[n % 3]


async def _achunks(prefix: str) -> AsyncIterator[str]:
    for chunk in _chunks(prefix):
        yield chunk
        await asyncio.sleep(0)


async def test_stream_reply_survives_kills_and_stores_exactly_the_chunks(killable: ServeProcess, user: str) -> None:
    seed = random.randrange(1 << 30)
    token = token_of(user)
    with Client(killable.base_url, token, retry=PATIENT) as sync_client:
        async with AsyncClient(killable.base_url, token, retry=PATIENT) as async_client:
            one = await async_client.threads.create(messages=[{"content": "tell me"}])
            two = await async_client.threads.create(messages=[{"content": "tell me too"}])
            stop = asyncio.Event()
            killer = asyncio.ensure_future(_killer(killable, stop, seed))
            replies = await asyncio.gather(
                asyncio.to_thread(
                    sync_client.messages.stream_reply, one.id, _chunks("s"), flush_chars=40, flush_interval=0.05
                ),
                async_client.messages.stream_reply(two.id, _achunks("a"), flush_chars=40, flush_interval=0.05),
            )
            stop.set()
            kills = await killer
            stored = [await async_client.messages.get(r.thread_id, r.id) for r in replies]
            threads = [[m async for m in async_client.messages.list_all(t.id, view="all")] for t in (one, two)]
    assert kills >= 1, f"the server was never killed (seed {seed})"
    for reply, read, prefix in zip(replies, stored, "sa", strict=True):
        expected = "".join(f"{prefix}{n}" + "é🙂 "[n % 3] for n in range(CHUNKS))
        assert (reply.status, reply.finish_reason) == ("completed", "stop")
        assert reply.content == expected and read.content == expected, f"seed {seed}"
    assert [len(messages) for messages in threads] == [2, 2], "one reply per thread, never two"
