"""The client's pure decisions, without a server: when a retry waits and how long, how chunks become deltas,
how SSE frames are read and repeats dropped, which read-your-writes position is kept."""

from __future__ import annotations

import json

import httpx
import pytest

from threadstore_client import MessageCreatedEvent, RetryPolicy, UnknownEvent
from threadstore_client._core import Call, Session, nothing
from threadstore_client._events import Frame, FrameReader, Resume
from threadstore_client._retry import Safety, after_status, after_transport_error
from threadstore_client._streaming import MAX_DELTA, Batcher
from threadstore_client.errors import APIConnectionError

POLICY = RetryPolicy(attempts=4, initial=1.0, multiplier=2.0, cap=3.0, jitter=0.5, max_retry_after=10.0)


def test_backoff_doubles_up_to_its_cap_less_at_most_its_jitter() -> None:
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 3.0), (9, 3.0)]:
        waits = [POLICY.backoff(attempt) for _ in range(200)]
        assert all(base * 0.5 <= wait <= base for wait in waits)


def test_retry_after_is_honoured_unless_it_asks_too_much() -> None:
    assert after_status(POLICY, Safety.READ, 1, 503, None, 4.0) == 4.0
    assert after_status(POLICY, Safety.UNSAFE, 1, 429, None, 2.5) == 2.5
    assert after_status(POLICY, Safety.READ, 1, 503, None, 11.0) is None


def test_only_transient_answers_and_a_keyed_calls_in_flight_conflict_are_retried() -> None:
    assert after_status(POLICY, Safety.KEYED, 1, 409, "in-flight", None) is not None
    assert after_status(POLICY, Safety.REPEATABLE, 1, 409, "in-flight", None) is None
    for status in (400, 404, 409, 412, 422, 500):
        assert after_status(POLICY, Safety.READ, 1, status, "archived", None) is None
    assert after_status(POLICY, Safety.READ, POLICY.attempts, 503, None, None) is None


def test_a_request_that_may_have_landed_is_repeated_only_when_a_repeat_is_safe() -> None:
    sent, unsent = APIConnectionError("reset", sent=True), APIConnectionError("refused", sent=False)
    assert after_transport_error(POLICY, Safety.UNSAFE, 1, sent) is None
    assert after_transport_error(POLICY, Safety.UNSAFE, 1, unsent) is not None
    for safety in (Safety.READ, Safety.KEYED, Safety.REPEATABLE):
        assert after_transport_error(POLICY, safety, 1, sent) is not None


def test_chunks_flush_at_the_character_count_or_the_interval() -> None:
    now = [0.0]
    batcher = Batcher(flush_chars=5, flush_interval=1.0, clock=lambda: now[0])
    assert batcher.add("ab") == [] and batcher.add("cd") == []
    assert batcher.add("e🙂") == ["abcde🙂"]
    assert batcher.add("x") == []
    now[0] = 1.5
    assert batcher.add("") == ["x"]
    assert batcher.rest() == []


def test_a_long_buffer_is_split_into_deltas_a_server_accepts() -> None:
    batcher = Batcher(flush_chars=10 * MAX_DELTA, flush_interval=60.0)
    assert [len(text) for text in batcher.add("y" * (MAX_DELTA + 5))] == [MAX_DELTA, 5]


def test_sse_frames_are_read_and_a_repeated_id_is_dropped() -> None:
    reader = FrameReader()
    lines = [": connected", "", "id: 7", "event: something.new", 'data: {"a":', "data: 1}", "retry: 250", ""]
    frames = [frame for line in lines if (frame := reader.feed(line)) is not None]
    assert frames == [Frame(id="7", event="something.new", data=['{"a":', "1}"], retry=250)]
    resume = Resume(POLICY, thread_id=None, last_event_id=6)
    assert resume.accept(frames[0]) == UnknownEvent(id=7, type="something.new", data={"a": 1})
    assert resume.accept(frames[0]) is None and resume.server_retry == 0.25
    old = Frame(id="5", event="message.created", data=["{}"])
    assert resume.accept(old) is None and resume.last_id == 7


def test_the_opening_frames_id_is_where_a_reconnect_resumes_though_it_yields_nothing() -> None:
    reader = FrameReader()
    frames = [frame for line in [": connected", "id: 41", ""] if (frame := reader.feed(line)) is not None]
    resume = Resume(POLICY, thread_id=None, last_event_id=None)
    assert resume.accept(frames[0]) is None and resume.last_id == 41
    resumed = Resume(POLICY, thread_id=None, last_event_id=50)
    assert resumed.accept(frames[0]) is None and resumed.last_id == 50  # never moves back


def test_a_message_created_frame_becomes_a_typed_event() -> None:
    message = {
        "id": "msg_1", "object": "message", "thread_id": "thr_1", "seq": 1, "role": "user", "content": "hi",
        "metadata": {}, "created_at": "2026-12-04T00:00:00.000Z", "a_field_of_a_newer_server": True,
    }  # fmt: skip
    event = Resume(POLICY, thread_id=None, last_event_id=None).accept(
        Frame(id="1", event="message.created", data=[json.dumps(message)])
    )
    assert isinstance(event, MessageCreatedEvent) and event.data.content == "hi"


@pytest.mark.parametrize(
    ("first", "second", "kept"),
    [("0/16B3748", "0/16B3750", "0/16B3750"), ("1/0", "0/FFFFFFFF", "1/0"), ("A/1", "a/2", "a/2")],
)
def test_the_later_read_after_position_is_kept(first: str, second: str, kept: str) -> None:
    session = Session("t")
    for position in (first, second):
        request = httpx.Request("POST", "http://x/api/threads")
        session.saw(httpx.Response(201, headers={"X-Read-After": position}, request=request))
    assert session.read_after == kept
    read = Call(method="GET", path="/api/threads", parse=nothing, safety=Safety.READ)
    assert session.headers(read)["X-Read-After"] == kept
