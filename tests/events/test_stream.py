"""`GET /api/events` as API.md describes it: the caller's events after commit, as the API returned the
objects, with ids that grow; a resumable, private, kept-alive stream that holds no database connection."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from typing import Any

import jwt
import pytest

from tests.conftest import new_user
from tests.harness.client import Api
from tests.http.problems import assert_problem
from threadstore.auth import issue_token
from threadstore.db.unit_of_work import Tx
from threadstore.events import repository
from threadstore.events.repository import DeliveredPage

pytestmark = pytest.mark.through_pgbouncer


async def test_every_write_arrives_as_its_event_with_the_object_the_api_returned(api: Api) -> None:
    user = new_user()
    async with api.stream(user) as stream:
        received = []
        created = await api.create_thread(user, messages=[{"content": "How do I plan a trip to Lisbon?"}])
        thread_url = f"/api/threads/{created['id']}"
        received += await stream.events(1)
        patched = (await api.request("PATCH", thread_url, user=user, json={"metadata": {"a": "b"}})).json()
        message = await api.append(user, created["id"])
        renamed = (await api.request("POST", f"{thread_url}/auto-rename", user=user)).json()
        archived = (await api.request("DELETE", thread_url, user=user)).json()
        # Received before the permanent delete, which erases the thread's events not yet delivered (API v2).
        received += await stream.events(4)
        deleted = await api.request("DELETE", thread_url, user=user, params={"permanent": "true"})
        assert deleted.status_code == 204
        received += await stream.events(1)

    assert [(f.event, f.data) for f in received] == [
        ("thread.created", created),
        ("thread.updated", patched),
        ("message.created", message),
        ("thread.updated", renamed),
        ("thread.updated", archived),
        ("thread.deleted", {"id": created["id"]}),
    ]
    ids = [f.id for f in received]
    assert all(isinstance(i, int) for i in ids)
    assert ids == sorted(set(ids))  # type: ignore[type-var]


async def test_a_new_stream_starts_with_events_committed_after_it_opened(api: Api) -> None:
    user = new_user()
    await api.create_thread(user, title="before")
    async with api.stream(user) as stream:
        after = await api.create_thread(user, title="after")
        first = await stream.event()
    assert first is not None and first.data == after


async def test_a_stream_dropped_before_its_first_event_resumes_from_the_id_it_opened_with(api: Api) -> None:
    """What a browser's EventSource does: it keeps the opening frame's id and reconnects with it, so what was
    committed while it was away arrives even though no event had reached it before the drop."""
    user = new_user()
    await api.create_thread(user, title="before")
    async with api.stream(user) as stream:
        assert stream.opened is not None
        start = stream.opened.id
        assert await stream.until_keep_alive() == []  # nothing arrives: the id dispatched no event
    while_away = [await api.create_thread(user, title=f"while away {n}") for n in range(3)]
    async with api.stream(user, last_event_id=start) as resumed:
        assert resumed.opened is not None and resumed.opened.id == start
        assert [f.data for f in await resumed.events(3)] == while_away


async def test_resuming_after_an_id_yields_exactly_the_events_after_it(api: Api) -> None:
    user = new_user()
    async with api.stream(user) as stream:
        thread = await api.create_thread(user)
        for n in range(5):
            await api.append(user, thread["id"], f"m{n}")
        received = await stream.events(6)
    for cut in range(len(received)):
        async with api.stream(user, last_event_id=received[cut].id) as resumed:
            suffix = await resumed.until_keep_alive()
        assert [(f.id, f.data) for f in suffix] == [(f.id, f.data) for f in received[cut + 1 :]]


async def test_a_stream_never_carries_another_users_events(api: Api) -> None:
    alice, bob = new_user(), new_user()
    async with api.stream(alice) as alice_stream, api.stream(bob) as bob_stream:
        alice_thread = await api.create_thread(alice)
        await api.append(alice, alice_thread["id"])
        bob_thread = await api.create_thread(bob)

        bob_first = await bob_stream.event()
        alice_events = await alice_stream.events(2)
    assert bob_first is not None and bob_first.data == bob_thread
    assert next(f.data["id"] for f in alice_events) == alice_thread["id"]
    assert all(f.data.get("thread_id", f.data["id"]) == alice_thread["id"] for f in alice_events)
    # Resuming from the very start shows only one's own events too.
    async with api.stream(bob, last_event_id=0) as replay:
        assert [f.data for f in await replay.until_keep_alive()] == [bob_thread]


@pytest.mark.parametrize("settings_overrides", [{"event_keep_alive_seconds": 0.3}])
async def test_keep_alive_comments_arrive_at_the_configured_interval(api: Api) -> None:
    async with api.stream(new_user()) as stream:
        frames = [await stream.frame() for _ in range(5)]
    assert all(f is not None and f.comment == "keep-alive" for f in frames)
    gaps = [b.received - a.received for a, b in itertools.pairwise(frames)]  # type: ignore[union-attr]
    assert max(gaps) < 0.3 * 5, gaps  # the interval, with room for a busy machine
    assert min(gaps) > 0.3 / 3, gaps


@pytest.mark.parametrize("settings_overrides", [{"event_poll_interval_seconds": 1.0}])
async def test_streams_hold_no_database_connection_while_they_wait(api: Api) -> None:
    users = [new_user() for _ in range(6)]
    async with contextlib.AsyncExitStack() as stack:
        streams = [await stack.enter_async_context(api.stream(user)) for user in users]
        for stream in streams:
            frame = await stream.frame()
            assert frame is not None and frame.comment == "keep-alive"
        assert api.hub.subscriptions == len(users)
        samples = []
        for _ in range(20):
            samples.append(api.database.engine.pool.checkedout())  # type: ignore[attr-defined]
            await asyncio.sleep(0.05)
    # Only the process's own short background reads are ever out — the hub's poll and the publisher's
    # sweep, one each per interval whatever the number of streams — never one per waiting stream.
    assert max(samples) <= 2 < len(users), samples
    assert 0 in samples, samples


@pytest.mark.parametrize("value", ["abc", "-1", "1.5", "12 13", "9" * 19])
async def test_a_malformed_last_event_id_is_400(api: Api, value: str) -> None:
    response = await api.request("GET", "/api/events", user=new_user(), headers={"Last-Event-ID": value})
    assert_problem(response, 400)


async def test_the_stream_needs_a_token(api: Api) -> None:
    response = await api.client.get("/api/events")
    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


async def _append_many(api: Api, user: str, thread: dict[str, Any], count: int, size: int) -> None:
    for n in range(count):
        await api.append(user, thread["id"], f"{n:06d}" + "x" * size)


@pytest.mark.parametrize(
    "settings_overrides", [{"event_stream_queue_size": 3}, {"event_stream_queue_bytes": 256 * 1024}]
)
async def test_a_consumer_that_falls_behind_is_closed_and_resumes_without_loss(api: Api) -> None:
    """A client that stops reading: once the socket buffers are full its queue fills (in events or in bytes),
    and the server closes the stream instead of holding a growing backlog. Resuming from its last id loses
    nothing."""
    user = new_user()
    thread = await api.create_thread(user)
    count = 60
    async with api.stream(user) as stream:
        # ~200 KB each: far more than the kernel's socket buffers hold while the client reads nothing.
        await _append_many(api, user, thread, count, 200_000)
        for _ in range(200):
            if api.hub.subscriptions == 0:
                break
            await asyncio.sleep(0.05)
        assert api.hub.subscriptions == 0, "the stream was not closed"
        first_part = []
        while (frame := await stream.event()) is not None:
            first_part.append(frame)
        assert stream.ended
    assert 0 < len(first_part) < count
    async with api.stream(user, last_event_id=first_part[-1].id) as resumed:
        rest = await resumed.events(count - len(first_part))
    contents = [f.data["content"][:6] for f in first_part + rest]
    assert contents == [f"{n:06d}" for n in range(count)]


async def test_shutdown_ends_open_streams_cleanly(api: Api) -> None:
    async with api.stream(new_user()) as stream:
        api.hub.close()  # what the lifespan (and the exit signal) do
        while (frame := await stream.frame()) is not None:
            assert frame.comment is not None
        assert stream.ended
    response = await api.request("GET", "/api/events", user=new_user())
    assert_problem(response, 503)


@pytest.mark.parametrize("settings_overrides", [{"max_streams_per_user": 3}])
async def test_one_stream_more_than_the_cap_ends_the_users_oldest_with_a_retry_hint(api: Api) -> None:
    """The oldest is told to wait 30 s (the default) before it reconnects, so tabs beyond the cap do not keep
    evicting each other; resumed from its last id it has lost nothing. Other users' streams do not count."""
    user, other = new_user(), new_user()
    async with contextlib.AsyncExitStack() as stack:
        oldest = await stack.enter_async_context(api.stream(user))
        younger = [await stack.enter_async_context(api.stream(user)) for _ in range(2)]
        await stack.enter_async_context(api.stream(other))
        thread = await api.create_thread(user)
        last_seen = await oldest.event()
        assert last_seen is not None and last_seen.data == thread

        newest = await stack.enter_async_context(api.stream(user))
        rest = await oldest.until_end(within=5)
        assert [f for f in rest if f.comment is None] == rest[-1:]  # the last frame, after keep-alives at most
        assert rest[-1].retry == 30_000 and rest[-1].event is None
        assert api.hub.subscriptions == 4  # the user's cap, and the other user's stream

        message = await api.append(user, thread["id"])
        for stream in younger[1:]:
            assert [f.data for f in await stream.events(2)] == [thread, message]
        received = await newest.event()
        assert received is not None and received.data == message
    async with api.stream(user, last_event_id=last_seen.id) as resumed:
        assert [f.data for f in await resumed.until_keep_alive()] == [message]


async def test_a_stream_ends_when_its_token_expires_and_a_fresh_token_resumes_it_losing_nothing(api: Api) -> None:
    user = new_user()
    token = issue_token(api.jwt_secret, user, ttl_seconds=2)
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    async with api.stream(user, token=token) as stream:
        thread = await api.create_thread(user)
        received = await stream.event()
        assert received is not None and received.data == thread
        assert all(f.event is None for f in await stream.until_end(within=5))  # keep-alives only
        ended = time.time()
    assert expires - 0.1 <= ended < expires + 1.0, (ended, expires)

    message = await api.append(user, thread["id"])  # written after the stream ended
    async with api.stream(user, last_event_id=received.id) as resumed:  # with a fresh token
        assert [f.data for f in await resumed.until_keep_alive()] == [message]


@pytest.mark.parametrize("settings_overrides", [{"event_page_bytes": 64 * 1024}])
async def test_a_catch_up_reads_pages_bounded_by_bytes_and_delivers_every_event_in_order(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page stops once the events before its last one reach the bound; one event larger than a page still
    goes, alone. Whatever the cuts, the resumed stream gets every event once, in order."""
    user = new_user()
    thread = await api.create_thread(user)
    sizes = [30_000, 30_000, 30_000, 150_000, 10, 10, 40_000, *[500] * 300, 70_000, 10]
    for n, size in enumerate(sizes):
        await api.append(user, thread["id"], f"{n:04d}" + "z" * size)
    pages: list[DeliveredPage] = []
    read = repository.delivered

    async def recorded(tx: Tx, *args: Any, **kwargs: Any) -> DeliveredPage:
        page = await read(tx, *args, **kwargs)
        if kwargs.get("user_id") == user:
            pages.append(page)
        return page

    monkeypatch.setattr(repository, "delivered", recorded)
    async with api.stream(user, last_event_id=0) as resumed:
        received = await resumed.until_keep_alive()
    assert [f.data["content"][:4] for f in received[1:]] == [f"{n:04d}" for n in range(len(sizes))]
    assert sum(len(page.events) for page in pages) == len(received)
    for page in pages:
        assert sum(event.size for event in page.events[:-1]) < 64 * 1024
    assert len(pages) < 20, [len(page.events) for page in pages]  # a few rows more than a page, not one each
