"""Messages through the client: append (branches, structured content), the list selectors and their
iterators, get, PATCH, deltas, branch delete, feedback and stream_reply — typed all the way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from threadstore_client import (
    ArchivedError,
    AsyncClient,
    Client,
    OffsetConflictError,
    Part,
    StateConflictError,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    Usage,
)


def test_appends_chain_and_the_selectors_list_paths_siblings_and_all(client: Client) -> None:
    thread = client.threads.create()
    first = client.messages.append(thread.id, "one")
    second = client.messages.append(thread.id, "two", role="assistant")
    other = client.messages.append(thread.id, "two bis", role="assistant", parent_id=first.id)
    assert (second.parent_id, second.depth, other.sibling_index) == (first.id, 2, 2)
    assert [m.id for m in client.messages.list_all(thread.id)] == [first.id, other.id]
    assert [m.id for m in client.messages.list_all(thread.id, leaf=second.id, order="desc")] == [second.id, first.id]
    assert [m.id for m in client.messages.list_all(thread.id, siblings_of=second.id)] == [second.id, other.id]
    assert [m.seq for m in client.messages.list_all(thread.id, view="all", limit=1)] == [1, 2, 3]
    assert client.messages.get(thread.id, second.id).sibling_count == 2


def test_structured_content_comes_back_as_typed_parts(client: Client) -> None:
    thread = client.threads.create()
    parts: list[Part] = [
        TextPart(text="Let me check."),
        ToolCallPart(id="call_1", name="weather", arguments='{"city": "Lisbon"}'),
        ToolResultPart(tool_call_id="call_1", content="sunny"),
    ]
    stored = client.messages.append(thread.id, parts, role="assistant", usage=Usage(input_tokens=3, output_tokens=4))
    assert (
        stored.content == parts
        and stored.text == "Let me check."
        and stored.usage == Usage(input_tokens=3, output_tokens=4)
    )


def test_a_branch_delete_removes_the_message_and_its_descendants(client: Client) -> None:
    thread = client.threads.create(messages=[{"content": "a"}, {"content": "b"}, {"content": "c"}])
    _, second, _ = list(client.messages.list_all(thread.id))
    assert client.messages.delete(thread.id, second.id) is None
    assert client.threads.get(thread.id).message_count == 1


def test_deltas_grow_a_reply_and_conflicts_say_why(client: Client) -> None:
    thread = client.threads.create()
    reply = client.messages.append(thread.id, "", role="assistant", status="in_progress", model="m-1")
    assert client.messages.append_delta(thread.id, reply.id, 0, "Hé🙂").length == 3
    assert client.messages.append_delta(thread.id, reply.id, 0, "Hé🙂").length == 3  # a retry: same answer
    with pytest.raises(OffsetConflictError) as wrong:
        client.messages.append_delta(thread.id, reply.id, 1, "x")
    assert (wrong.value.reason, wrong.value.length) == ("offset", 3)
    done = client.messages.update(thread.id, reply.id, status="completed", finish_reason="stop")
    assert (done.content, done.status, done.model) == ("Hé🙂", "completed", "m-1")
    with pytest.raises(StateConflictError):
        client.messages.append_delta(thread.id, reply.id, 3, "more")


def test_feedback_is_set_replaced_and_cleared(client: Client) -> None:
    thread = client.threads.create(messages=[{"content": "hi"}])
    message = next(iter(client.messages.list_all(thread.id)))
    rated = client.feedback.set(thread.id, message.id, "up", comment="nice")
    assert rated.feedback is not None and (rated.feedback.rating, rated.feedback.comment) == ("up", "nice")
    assert client.feedback.set(thread.id, message.id, "down").feedback.rating == "down"  # type: ignore[union-attr]
    assert client.feedback.clear(thread.id, message.id) is None
    assert client.messages.get(thread.id, message.id).feedback is None
    client.threads.archive(thread.id)
    with pytest.raises(ArchivedError):
        client.feedback.set(thread.id, message.id, "up")


def test_stream_reply_batches_chunks_and_closes_the_reply(client: Client) -> None:
    thread = client.threads.create(messages=[{"content": "Tell me a story"}])
    chunks = [f"word{n} " for n in range(300)] + ["🙂"]
    final = client.messages.stream_reply(
        thread.id, iter(chunks), model="m-1", flush_chars=100, usage={"input_tokens": 1, "output_tokens": 301}
    )
    assert (final.content, final.status, final.finish_reason) == ("".join(chunks), "completed", "stop")
    assert final.usage == Usage(input_tokens=1, output_tokens=301) and final.role == "assistant"


def test_a_failing_chunk_iterator_leaves_an_incomplete_reply_with_its_text(client: Client) -> None:
    thread = client.threads.create()

    def chunks() -> Iterator[str]:
        yield "partial "
        yield "answer"
        raise RuntimeError("the model went away")

    with pytest.raises(RuntimeError, match="went away"):
        client.messages.stream_reply(thread.id, chunks())
    (reply,) = client.messages.list_all(thread.id)
    assert (reply.content, reply.status, reply.finish_reason) == ("partial answer", "incomplete", "error")


async def test_the_async_stream_reply_takes_an_async_iterator(aclient: AsyncClient) -> None:
    thread = await aclient.threads.create()

    async def chunks() -> AsyncIterator[str]:
        for n in range(50):
            yield f"{n},"

    final = await aclient.messages.stream_reply(thread.id, chunks(), flush_chars=10, finish_reason="length")
    assert (final.content, final.finish_reason) == ("".join(f"{n}," for n in range(50)), "length")
    assert [m.id async for m in aclient.messages.list_all(thread.id)] == [final.id]


async def test_read_all_streams_the_whole_selection_as_ndjson(client: Client, aclient: AsyncClient) -> None:
    thread = client.threads.create(messages=[{"content": f"m{n}"} for n in range(60)])
    assert [m.content for m in client.messages.read_all(thread.id)] == [f"m{n}" for n in range(60)]
    backwards = [m.seq async for m in aclient.messages.read_all(thread.id, order="desc")]
    assert backwards == list(range(60, 0, -1))
