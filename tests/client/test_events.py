"""`events()`: typed events as they commit, one thread's with `thread_id=`, and a stream that outlives a server
restart — it reconnects with Last-Event-ID and yields every event once, in id order."""

from __future__ import annotations

import asyncio
import contextlib
import threading

from tests.harness.databases import JWT_SECRET
from tests.harness.processes import ServeProcess
from threadstore.auth import issue_token
from threadstore_client import (
    AsyncClient,
    Client,
    Event,
    MessageCreatedEvent,
    MessageDeltaEvent,
    ThreadCreatedEvent,
    ThreadUpdatedEvent,
)

from .conftest import PATIENT, token_of


async def _take(stream: object, count: int, within: float = 60.0) -> list[Event]:
    events: list[Event] = []

    async def take() -> None:
        async for event in stream:  # type: ignore[attr-defined]
            events.append(event)
            if len(events) == count:
                return

    await asyncio.wait_for(take(), within)
    return events


def test_the_sync_stream_yields_typed_events_of_the_callers_writes(client: Client) -> None:
    thread = client.threads.create(title="watched")
    message = client.messages.append(thread.id, "hello")
    client.threads.update(thread.id, title="renamed")
    client.threads.archive(thread.id)
    with client.events(last_event_id=0) as stream:
        events = [next(stream) for _ in range(4)]
    kinds = [ThreadCreatedEvent, MessageCreatedEvent, ThreadUpdatedEvent, ThreadUpdatedEvent]
    assert [type(e) for e in events] == kinds
    assert isinstance(events[1], MessageCreatedEvent) and events[1].data.id == message.id
    assert isinstance(events[2], ThreadUpdatedEvent) and events[2].data.title == "renamed"
    assert [e.id for e in events] == sorted({e.id for e in events})


def test_a_sync_stream_can_be_closed_from_another_thread_while_it_waits(client: Client) -> None:
    stream = client.events()
    received: list[Event] = []
    reader = threading.Thread(target=lambda: received.extend(stream))
    reader.start()
    threading.Timer(0.5, stream.close).start()
    reader.join(20)
    assert not reader.is_alive() and received == []


async def test_a_thread_stream_carries_that_threads_events_and_deltas_only(aclient: AsyncClient) -> None:
    watched = await aclient.threads.create()
    await aclient.threads.create(title="other")
    reply = await aclient.messages.append(watched.id, "", role="assistant", status="in_progress")
    await aclient.messages.append_delta(watched.id, reply.id, 0, "hi")
    async with aclient.events(thread_id=watched.id, last_event_id=0) as stream:
        created, appended, delta = await _take(stream, 3)
    assert isinstance(created, ThreadCreatedEvent) and created.data.id == watched.id
    assert isinstance(appended, MessageCreatedEvent) and appended.data.id == reply.id
    assert isinstance(delta, MessageDeltaEvent) and (delta.data.offset, delta.data.text) == (0, "hi")


async def test_the_stream_resumes_across_a_server_restart_without_loss_or_repeats(
    killable: ServeProcess, user: str
) -> None:
    async with AsyncClient(killable.base_url, token_of(user), retry=PATIENT) as client:
        thread = await client.threads.create()
        before = [await client.messages.append(thread.id, f"before {n}") for n in range(3)]
        stream = client.events()
        async with stream:
            # A stream without Last-Event-ID starts at its connection: take the first event only once it is
            # surely open, by writing until one arrives.
            first = asyncio.ensure_future(_take(stream, 1))
            while not first.done():
                before.append(await client.messages.append(thread.id, f"before {len(before)}"))
                await asyncio.sleep(0.2)
            seen = first.result()
            (opening,) = seen
            assert isinstance(opening, MessageCreatedEvent)
            position = [m.id for m in before].index(opening.data.id)
            await killable.kill()
            restarted = asyncio.ensure_future(killable.start())
            after = [await client.messages.append(thread.id, f"after {n}") for n in range(5)]
            await restarted
            after.append(await client.messages.append(thread.id, "after the restart"))
            seen += await _take(stream, len(before) - position - 1 + len(after))
    ids = [event.id for event in seen]
    assert ids == sorted(set(ids)), "ids grow strictly: nothing yielded twice"
    created = [e.data.id for e in seen if isinstance(e, MessageCreatedEvent)]
    assert created == [m.id for m in before[position:] + after], "every message from the first one seen, once"


async def test_a_stream_dropped_before_its_first_event_loses_nothing_written_while_it_was_away(
    killable: ServeProcess, user: str
) -> None:
    """It resumes from the id of the stream's opening frame: without it, the reconnect would open a new stream
    and skip what was committed before it."""
    async with AsyncClient(killable.base_url, token_of(user), retry=PATIENT) as client:
        thread = await client.threads.create()
        stream = client.events()
        async with stream:
            taking = asyncio.ensure_future(_take(stream, 3))
            async with asyncio.timeout(30):
                while stream.last_event_id is None:  # the opening frame arrived: no event, but an id  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            await killable.kill()
            await killable.start()
            # Written at once, before the stream's backoff lets it reconnect.
            away = [await client.messages.append(thread.id, f"while away {n}") for n in range(3)]
            seen = await taking
    assert [e.data.id for e in seen if isinstance(e, MessageCreatedEvent)] == [m.id for m in away]


def test_an_events_session_sets_the_browser_cookie(client: Client) -> None:
    session = client.events.session()
    assert session.cookie and session.max_age is not None and 0 < session.max_age <= 86_400


async def test_an_async_stream_can_be_closed_while_another_task_waits_on_it(aclient: AsyncClient) -> None:
    stream = aclient.events()
    reader = asyncio.ensure_future(_take(stream, 1))
    await asyncio.sleep(0.5)
    await stream.aclose()
    with contextlib.suppress(StopAsyncIteration):
        await asyncio.wait_for(reader, 20)
    assert reader.done()


async def test_a_stream_outlives_its_tokens_expiry_with_a_token_function(server: ServeProcess, user: str) -> None:
    """The server ends a stream at its token's `exp`; the client reconnects with a fresh token and resumes."""
    async with AsyncClient(server.base_url, lambda: issue_token(JWT_SECRET, user, 2), retry=PATIENT) as client:
        thread = await client.threads.create()
        async with client.events(last_event_id=0) as stream:
            reader = asyncio.ensure_future(_take(stream, 9))
            sent = []
            for n in range(8):
                sent.append(await client.messages.append(thread.id, f"m{n}"))
                await asyncio.sleep(0.5)  # four seconds in all: past the first tokens' exp
            events = await reader
    assert [e.data.id for e in events if isinstance(e, MessageCreatedEvent)] == [m.id for m in sent]
