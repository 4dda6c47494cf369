"""Watching a reply grow (issue 17, item 3; docs/api.md "Watching a reply"): with a real server and a generator
that streams 2,000 deltas, a client that opens the stream mid-reply and then GETs the message, and a client
that resumes with Last-Event-ID, both rebuild the reply's text exactly; the events of an unfinished reply
carry its text as it was when they were recorded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import new_user
from tests.harness.client import Api, EventStream, Frame

DELTAS = 2_000
OPENING = "Once: "


def piece(n: int) -> str:
    """The generator's n-th delta: lengths vary, and characters outside the BMP count as one (offsets are code
    points)."""
    return f"<{n}>" + "xé🙂"[n % 3] * (n % 7)


@dataclass
class Generator:
    """Streams DELTAS deltas into a new in_progress reply, then closes it; `sent` counts acknowledged deltas."""

    api: Api
    user: str
    thread_id: str
    reply: dict[str, Any] = field(default_factory=dict)
    sent: int = 0
    text: str = OPENING
    progressed: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> dict[str, Any]:
        body = {"role": "assistant", "content": OPENING, "status": "in_progress", "model": "gen-1"}
        response = await self.api.request("POST", f"/api/threads/{self.thread_id}/messages", user=self.user, json=body)
        assert response.status_code == 201, response.text
        self.reply = response.json()
        return self.reply

    @property
    def url(self) -> str:
        return f"/api/threads/{self.thread_id}/messages/{self.reply['id']}"

    async def delta(self, text: str) -> None:
        body = {"offset": len(self.text), "text": text}
        response = await self.api.request("POST", f"{self.url}/deltas", user=self.user, json=body)
        assert response.status_code == 200, response.text
        self.text += text
        self.sent += 1
        self.progressed.set()

    async def patch(self, **body: Any) -> dict[str, Any]:
        response = await self.api.request("PATCH", self.url, user=self.user, json=body)
        assert response.status_code == 200, response.text
        patched: dict[str, Any] = response.json()
        return patched

    async def run(self, count: int = DELTAS) -> dict[str, Any]:
        for n in range(count):
            await self.delta(piece(n))
            await asyncio.sleep(0)  # let the watcher read between deltas, as a second client would
        return await self.patch(status="completed", finish_reason="stop")

    async def reached(self, sent: int) -> None:
        while self.sent < sent:
            self.progressed.clear()
            await asyncio.wait_for(self.progressed.wait(), 20)


class Gap(AssertionError):
    pass


@dataclass
class Watcher:
    """The client rule of docs/api.md "Watching a reply": start from a message object (a GET, or the reply's
    message.created); append a delta iff its offset is the text's length, skip it if below (the start already
    had it), fail on a gap; a message.updated replaces the message."""

    message_id: str
    text: str = ""
    status: str = "in_progress"
    applied: int = 0
    skipped: int = 0
    strict: bool = False  # no skips allowed: the client saw every event from the start (a resumed stream)
    last_id: int | None = None

    def start(self, message: dict[str, Any]) -> None:
        self.text, self.status = message["content"], message["status"]

    def take(self, frame: Frame) -> None:
        """Applies one event of the stream; events of other messages are ignored."""
        data = frame.data
        self.last_id = frame.id
        if frame.event == "message.delta" and data["message_id"] == self.message_id:
            if data["offset"] == len(self.text):
                self.text += data["text"]
                self.applied += 1
            elif data["offset"] < len(self.text) and not self.strict:
                assert data["offset"] + len(data["text"]) <= len(self.text), data
                self.skipped += 1
            else:
                raise Gap(f"delta at {data['offset']} with {len(self.text)} characters held")
        elif frame.event in ("message.created", "message.updated") and data["id"] == self.message_id:
            self.start(data)

    async def follow(self, stream: EventStream, until: Callable[[Watcher], bool]) -> None:
        while not until(self):
            frame = await stream.event()
            assert frame is not None, "the stream ended"
            self.take(frame)


def finished(watcher: Watcher) -> bool:
    return watcher.status != "in_progress"


def applied(count: int) -> Callable[[Watcher], bool]:
    return lambda watcher: watcher.applied >= count


async def test_watchers_of_a_reply_of_2000_deltas_rebuild_it_exactly(api: Api) -> None:
    """One generator, two watchers at once (one run of 2,000 deltas keeps the test's time down): one opens the
    stream mid-reply and then GETs the message; the other follows from the reply's message.created, is cut off
    twice and resumes with Last-Event-ID each time."""
    user = new_user()
    generator = Generator(api, user, (await api.create_thread(user))["id"])
    resuming = Watcher("", strict=True)
    async with api.stream(user) as first_stream:
        reply = await generator.start()
        writing = asyncio.create_task(generator.run())
        try:
            resuming.message_id = reply["id"]
            await resuming.follow(first_stream, applied(300))
        except BaseException:
            writing.cancel()
            raise
    try:
        late = asyncio.create_task(_open_mid_reply_then_get(api, user, generator))
        await _resume_twice(api, user, generator, resuming)
        joined = await late
        closed = await writing
    finally:
        writing.cancel()

    expected = OPENING + "".join(piece(n) for n in range(DELTAS))
    assert closed["content"] == generator.text == expected
    assert (joined.status, joined.text) == ("completed", expected)
    assert joined.skipped > 0 and joined.applied > 0, (joined.skipped, joined.applied)
    assert (resuming.status, resuming.text) == ("completed", expected)
    assert resuming.applied == DELTAS and resuming.skipped == 0


async def _open_mid_reply_then_get(api: Api, user: str, generator: Generator) -> Watcher:
    """The rule for a client that joins late: open the stream, then GET, then apply what follows."""
    await generator.reached(500)
    async with api.stream(user) as stream:
        # The stream's start is fixed once it is open; deltas that commit before the GET are then both in the
        # GET and on the stream, and the rule skips them.
        await generator.reached(generator.sent + 20)
        got = await api.request("GET", generator.url, user=user)
        assert got.status_code == 200, got.text
        assert got.json()["status"] == "in_progress", "the GET must fall mid-reply"
        watcher = Watcher(generator.reply["id"])
        watcher.start(got.json())
        await watcher.follow(stream, finished)
    return watcher


async def _resume_twice(api: Api, user: str, generator: Generator, watcher: Watcher) -> None:
    """Each time disconnected while the generator goes on: a resume catches up from the database, then
    follows live."""
    for until in (applied(1_200), finished):
        await generator.reached(watcher.applied + 300)
        async with api.stream(user, last_event_id=watcher.last_id) as resumed:
            await watcher.follow(resumed, until)


async def test_events_of_an_unfinished_reply_carry_its_text_as_it_was_then(api: Api) -> None:
    """Read after the reply ended (its deltas folded into its content), live and replayed from the start: a
    message.created or a mid-reply message.updated that read the message's current text instead of carrying
    its own would show the final text. A PATCH that replaces the text mid-reply is followed by the rule too."""
    user = new_user()
    generator = Generator(api, user, (await api.create_thread(user))["id"])
    async with api.stream(user) as stream:
        reply = await generator.start()
        for n in range(30):
            await generator.delta(piece(n))
        amended = await generator.patch(model="gen-2")
        at_amend = generator.text
        for n in range(30, 60):
            await generator.delta(piece(n))
        replaced = await generator.patch(content="Rewritten: ")
        generator.text = "Rewritten: "
        for n in range(60, 90):
            await generator.delta(piece(n))
        closed = await generator.patch(status="incomplete", finish_reason="cancelled")
        live = await stream.events(1 + 90 + 3)
    async with api.stream(user, last_event_id=0) as replay:
        replayed = await replay.until_keep_alive()

    assert closed["content"] == "Rewritten: " + "".join(piece(n) for n in range(60, 90))
    for frames in (live, replayed):
        whole = [(f.event, f.data) for f in frames if f.event in ("message.created", "message.updated")]
        assert whole == [
            ("message.created", reply),
            ("message.updated", amended),
            ("message.updated", replaced),
            ("message.updated", closed),
        ]
        assert (reply["content"], amended["content"], amended["status"]) == (OPENING, at_amend, "in_progress")
        assert replaced["content"] == "Rewritten: "
        watcher = Watcher(reply["id"], strict=True)
        for frame in frames:
            watcher.take(frame)
        assert (watcher.status, watcher.text, watcher.applied) == ("incomplete", closed["content"], 90)
