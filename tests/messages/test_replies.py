"""Streamed replies (API.md, version 2): an in_progress reply grown by deltas, ended or amended by PATCH, with
feedback; each change one transaction that leaves the thread's version alone."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Api, Factory, new_user
from tests.http.problems import assert_problem
from tests.threads.helpers import assert_validation_error, recorded_events

pytestmark = pytest.mark.through_pgbouncer


async def start_reply(api: Api, user: str, thread_id: str, content: str = "", **body: Any) -> dict[str, Any]:
    response = await api.request(
        "POST",
        f"/api/threads/{thread_id}/messages",
        user=user,
        json={"role": "assistant", "content": content, "status": "in_progress", **body},
    )
    assert response.status_code == 201, response.text
    message: dict[str, Any] = response.json()
    return message


async def delta(api: Api, user: str, thread_id: str, message_id: str, offset: int, text: str) -> Any:
    return await api.request(
        "POST",
        f"/api/threads/{thread_id}/messages/{message_id}/deltas",
        user=user,
        json={"offset": offset, "text": text},
    )


async def patch(api: Api, user: str, thread_id: str, message_id: str, **body: Any) -> Any:
    return await api.request("PATCH", f"/api/threads/{thread_id}/messages/{message_id}", user=user, json=body)


async def message(api: Api, user: str, thread_id: str, message_id: str) -> dict[str, Any]:
    response = await api.request("GET", f"/api/threads/{thread_id}/messages/{message_id}", user=user)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def thread_version(api: Api, user: str, thread_id: str) -> tuple[int, str]:
    response = await api.request("GET", f"/api/threads/{thread_id}", user=user)
    assert response.status_code == 200, response.text
    return response.json()["version"], response.json()["updated_at"]


async def test_a_reply_grows_by_deltas_and_reads_back_exactly(api: Api, user: str, create_thread: Factory) -> None:
    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid, model="gpt-x")
    assert (reply["status"], reply["content"], reply["model"], reply["finish_reason"]) == (
        "in_progress",
        "",
        "gpt-x",
        None,
    )
    text = ["Hel", "lo, ", "wörld ", "🙂", "!"]
    offset = 0
    for piece in text:
        response = await delta(api, user, tid, reply["id"], offset, piece)
        assert response.status_code == 200, response.text
        offset += len(piece)
        assert response.json() == {
            "object": "message.delta",
            "message_id": reply["id"],
            "offset": offset - len(piece),
            "length": offset,
        }
    assert (await message(api, user, tid, reply["id"]))["content"] == "".join(text)
    listed = await api.request("GET", f"/api/threads/{tid}/messages", user=user)
    assert listed.json()["data"][-1]["content"] == "".join(text)


async def test_a_reply_may_start_with_text(api: Api, user: str, create_thread: Factory) -> None:
    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid, "Once")
    assert (await delta(api, user, tid, reply["id"], 4, " upon")).json()["length"] == 9
    assert (await message(api, user, tid, reply["id"]))["content"] == "Once upon"


async def test_empty_content_is_only_for_an_in_progress_message(api: Api, user: str, create_thread: Factory) -> None:
    tid = (await create_thread())["id"]
    response = await api.request("POST", f"/api/threads/{tid}/messages", user=user, json={"content": ""})
    assert_validation_error(response, "content")
    created = await api.request(
        "POST",
        "/api/threads",
        user=user,
        json={"messages": [{"role": "assistant", "content": "", "status": "in_progress"}]},
    )
    assert created.status_code == 201, created.text
    first = (await api.request("GET", f"/api/threads/{created.json()['id']}/messages", user=user)).json()["data"][0]
    assert (first["status"], first["content"]) == ("in_progress", "")
    assert (await delta(api, user, created.json()["id"], first["id"], 0, "hi")).status_code == 200


async def test_a_repeated_delta_changes_nothing_and_answers_the_same(
    api: Api, user: str, create_thread: Factory
) -> None:
    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid)
    first = await delta(api, user, tid, reply["id"], 0, "abc")
    await delta(api, user, tid, reply["id"], 3, "def")
    again = await delta(api, user, tid, reply["id"], 0, "abc")
    assert again.status_code == 200 and again.json() == first.json()
    assert (await delta(api, user, tid, reply["id"], 3, "def")).json()["length"] == 6
    assert (await message(api, user, tid, reply["id"]))["content"] == "abcdef"
    # Also once the reply ended.
    assert (await patch(api, user, tid, reply["id"], status="completed")).status_code == 200
    assert (await delta(api, user, tid, reply["id"], 3, "def")).json() == {
        "object": "message.delta",
        "message_id": reply["id"],
        "offset": 3,
        "length": 6,
    }
    deltas = [data for kind, data in await recorded_events(api, user) if kind == "message.delta"]
    assert [(d["offset"], d["text"]) for d in deltas] == [(0, "abc"), (3, "def")]


async def test_a_delta_at_another_offset_is_409_with_the_stored_length(
    api: Api, user: str, create_thread: Factory
) -> None:
    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid)
    await delta(api, user, tid, reply["id"], 0, "abc")
    for offset, text in ((5, "x"), (1, "zz"), (0, "abd")):  # ahead; behind with other text; a racing writer's
        body = assert_problem(await delta(api, user, tid, reply["id"], offset, text), 409)
        assert (body["reason"], body["length"]) == ("offset", 3)
    assert (await message(api, user, tid, reply["id"]))["content"] == "abc"


async def test_deltas_need_an_in_progress_string_reply_of_an_active_thread(
    api: Api, user: str, create_thread: Factory
) -> None:
    tid = (await create_thread())["id"]
    done = (await api.request("POST", f"/api/threads/{tid}/messages", user=user, json={"content": "hi"})).json()
    body = assert_problem(await delta(api, user, tid, done["id"], 2, "!"), 409)
    assert body["reason"] == "state" and "length" not in body
    reply = await start_reply(api, user, tid)
    assert (await api.request("DELETE", f"/api/threads/{tid}", user=user)).status_code == 200
    assert assert_problem(await delta(api, user, tid, reply["id"], 0, "x"), 409)["reason"] == "archived"
    assert assert_problem(await delta(api, user, tid, "msg_nonexistent000000000", 0, "x"), 404)
    assert assert_problem(await delta(api, new_user(), tid, reply["id"], 0, "x"), 404)


async def test_a_delta_past_the_content_limit_is_422(backend: Any, tmp_path: Any) -> None:
    from tests.conftest import make_settings, running_api

    async with running_api(backend, make_settings(backend, tmp_path, max_content_chars=10)) as api:
        user = new_user()
        tid = (await api.request("POST", "/api/threads", user=user, json={})).json()["id"]
        reply = await start_reply(api, user, tid)
        assert (await delta(api, user, tid, reply["id"], 0, "123456789")).status_code == 200
        assert_validation_error(await delta(api, user, tid, reply["id"], 9, "ab"), "text")
        assert (await delta(api, user, tid, reply["id"], 9, "a")).json()["length"] == 10
        assert (await message(api, user, tid, reply["id"]))["content"] == "123456789a"


async def test_deltas_patches_and_feedback_leave_the_thread_version(
    api: Api, user: str, create_thread: Factory
) -> None:
    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid)
    before = await thread_version(api, user, tid)
    await delta(api, user, tid, reply["id"], 0, "x")
    await patch(api, user, tid, reply["id"], metadata={"k": 1})
    await patch(api, user, tid, reply["id"], status="completed")
    await api.request("PUT", f"/api/threads/{tid}/messages/{reply['id']}/feedback", user=user, json={"rating": "up"})
    assert await thread_version(api, user, tid) == before


async def test_a_closing_patch_keeps_the_text_and_sets_the_end(api: Api, user: str, create_thread: Factory) -> None:
    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid)
    await delta(api, user, tid, reply["id"], 0, "The answer")
    await delta(api, user, tid, reply["id"], 10, " is 42.")
    usage = {"input_tokens": 12, "output_tokens": 5}
    response = await patch(
        api, user, tid, reply["id"], status="completed", finish_reason="stop", usage=usage, model="m1"
    )
    assert response.status_code == 200, response.text
    ended = response.json()
    assert (ended["status"], ended["content"], ended["finish_reason"], ended["usage"], ended["model"]) == (
        "completed",
        "The answer is 42.",
        "stop",
        usage,
        "m1",
    )
    assert await message(api, user, tid, reply["id"]) == ended
    # The same PATCH again (a retry) changes nothing: 200, and no second event.
    again = await patch(api, user, tid, reply["id"], status="completed", finish_reason="stop", usage=usage, model="m1")
    assert again.status_code == 200 and again.json() == ended
    updated = [data for kind, data in await recorded_events(api, user) if kind == "message.updated"]
    assert updated == [ended]


async def test_a_finished_message_does_not_change_but_its_metadata(api: Api, user: str, create_thread: Factory) -> None:
    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid, "draft")
    await patch(api, user, tid, reply["id"], status="incomplete", finish_reason="cancelled")
    for change in (
        {"content": "edited"},
        {"finish_reason": "stop"},
        {"model": "other"},
        {"usage": {"input_tokens": 1, "output_tokens": 1}},
        {"status": "completed"},
        {"status": "in_progress"},
    ):
        assert assert_problem(await patch(api, user, tid, reply["id"], **change), 409)["reason"] == "state", change
    response = await patch(api, user, tid, reply["id"], metadata={"rated": True}, finish_reason="cancelled")
    assert response.status_code == 200, response.text
    assert (response.json()["metadata"], response.json()["content"]) == ({"rated": True}, "draft")


async def test_a_patch_may_replace_an_unfinished_replys_content(api: Api, user: str, create_thread: Factory) -> None:
    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid)
    await delta(api, user, tid, reply["id"], 0, "garbled")
    replaced = await patch(api, user, tid, reply["id"], content="clean")
    assert replaced.status_code == 200 and replaced.json()["status"] == "in_progress"
    assert assert_problem(await delta(api, user, tid, reply["id"], 7, "!"), 409)["length"] == 5
    assert (await delta(api, user, tid, reply["id"], 5, "!")).status_code == 200
    assert (await patch(api, user, tid, reply["id"], status="completed")).json()["content"] == "clean!"


async def test_null_status_content_or_metadata_is_422(api: Api, user: str, create_thread: Factory) -> None:
    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid)
    for name in ("status", "content", "metadata"):
        assert_validation_error(await patch(api, user, tid, reply["id"], **{name: None}), name)
    assert_validation_error(await patch(api, user, tid, reply["id"], usage={"input_tokens": -1, "output_tokens": 0}))
    assert_validation_error(await patch(api, user, tid, reply["id"], finish_reason="x" * 65), "finish_reason")
    # JSON may escape half of a surrogate pair; no database can store it.
    for name, raw in (("model", '{"model": "a\\ud800"}'), ("finish_reason", '{"finish_reason": "\\udfff"}')):
        response = await api.request(
            "PATCH",
            f"/api/threads/{tid}/messages/{reply['id']}",
            user=user,
            content=raw,
            headers={"content-type": "application/json"},
        )
        assert_validation_error(response, name)
    surrogate_delta = await api.request(
        "POST",
        f"/api/threads/{tid}/messages/{reply['id']}/deltas",
        user=user,
        content='{"offset": 0, "text": "x\\ud83d"}',
        headers={"content-type": "application/json"},
    )
    assert_validation_error(surrogate_delta, "text")


async def test_feedback_is_set_replaced_and_removed(api: Api, user: str, create_thread: Factory) -> None:
    tid = (await create_thread())["id"]
    m = (await api.request("POST", f"/api/threads/{tid}/messages", user=user, json={"content": "hi"})).json()
    path = f"/api/threads/{tid}/messages/{m['id']}/feedback"
    first = await api.request("PUT", path, user=user, json={"rating": "down", "comment": "wrong year"})
    assert first.status_code == 200, first.text
    assert first.json()["feedback"]["rating"] == "down" and first.json()["feedback"]["comment"] == "wrong year"
    second = (await api.request("PUT", path, user=user, json={"rating": "up"})).json()["feedback"]
    assert (second["rating"], second["comment"]) == ("up", None)
    assert (await message(api, user, tid, m["id"]))["feedback"] == second
    assert (await api.request("DELETE", path, user=user)).status_code == 204
    assert (await message(api, user, tid, m["id"]))["feedback"] is None
    assert (await api.request("DELETE", path, user=user)).status_code == 204
    assert_validation_error(await api.request("PUT", path, user=user, json={"rating": "meh"}), "rating")
    assert_validation_error(await api.request("PUT", path, user=user, json={"rating": "up", "comment": "x" * 4097}))
    await api.request("PUT", path, user=user, json={"rating": "up"})
    assert (await api.request("DELETE", f"/api/threads/{tid}", user=user)).status_code == 200
    assert (
        assert_problem(await api.request("PUT", path, user=user, json={"rating": "down"}), 409)["reason"] == "archived"
    )
    assert assert_problem(await api.request("DELETE", path, user=user), 409)["reason"] == "archived"
    kinds = [kind for kind, _ in await recorded_events(api, user) if kind == "message.updated"]
    assert len(kinds) == 4  # two PUTs, the DELETE, the PUT again


async def test_the_events_of_a_reply_rebuild_it_exactly(api: Api, user: str, create_thread: Factory) -> None:
    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid, "A")
    await delta(api, user, tid, reply["id"], 1, "B")
    await patch(api, user, tid, reply["id"], model="mid-stream")  # an update of an unfinished reply
    await delta(api, user, tid, reply["id"], 2, "C")
    await patch(api, user, tid, reply["id"], status="completed")
    rebuilt: dict[str, Any] = {}
    for kind, data in await recorded_events(api, user):
        if kind in ("message.created", "message.updated"):
            rebuilt = dict(data)
        elif kind == "message.delta":
            assert data["offset"] == len(rebuilt["content"])
            rebuilt["content"] += data["text"]
    assert rebuilt == await message(api, user, tid, reply["id"])
    assert rebuilt["content"] == "ABC"


async def test_deleting_a_reply_erases_its_deltas_and_the_events_holding_its_text(
    api: Api, user: str, create_thread: Factory
) -> None:
    from sqlalchemy import func, select

    from threadstore.db.tables import message_deltas
    from threadstore.events import repository as events_repository

    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid, "secret ")
    await delta(api, user, tid, reply["id"], 7, "words")
    await patch(api, user, tid, reply["id"], model="m")
    assert (await api.request("DELETE", f"/api/threads/{tid}/messages/{reply['id']}", user=user)).status_code == 204
    async with api.database.engine.connect() as conn:
        left = select(func.count()).where(message_deltas.c.message_id == reply["id"])
        assert (await conn.execute(left)).scalar_one() == 0

    async def delivered(tx: Any) -> Any:
        return await events_repository.delivered(tx, 0, 2**62, 1000, 2**30, user_id=user)

    await api.in_process.state.event_publisher.publish_all(force=True)
    page = await api.database.read(delivered)
    assert [e.type for e in page.events] == ["thread.created", "message.deleted", "thread.updated"]


async def test_a_reply_that_ends_with_tool_calls_sets_its_parts_in_the_closing_patch(
    api: Api, user: str, create_thread: Factory
) -> None:
    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid)
    await delta(api, user, tid, reply["id"], 0, "Let me check the weather.")
    final = [
        {"type": "text", "text": "Let me check the weather."},
        {"type": "tool_call", "id": "call_1", "name": "weather", "arguments": '{"city": "Oslo"}'},
    ]
    closing = {"status": "completed", "finish_reason": "tool_calls", "content": final}
    response = await patch(api, user, tid, reply["id"], **closing)
    assert response.status_code == 200, response.text
    ended = response.json()
    assert ended["content"] == final and ended["status"] == "completed"
    assert (await patch(api, user, tid, reply["id"], **closing)).json() == ended  # a retry: no change
    assert assert_problem(await delta(api, user, tid, reply["id"], 25, "x"), 409)["reason"] == "state"
    updated = [data for kind, data in await recorded_events(api, user) if kind == "message.updated"]
    assert updated == [ended]
    # A tool's answer goes in a tool message, whose parts are tool results only.
    result = await start_reply(api, user, tid, role="tool")
    bad = await patch(api, user, tid, result["id"], content=[{"type": "text", "text": "sunny"}])
    assert_validation_error(bad, "content", 0, "type")
    answer = [{"type": "tool_result", "tool_call_id": "call_1", "content": "sunny"}]
    good = await patch(api, user, tid, result["id"], content=answer, status="completed")
    assert good.status_code == 200 and good.json()["content"][0]["is_error"] is False


async def test_deltas_do_not_apply_to_a_reply_whose_content_is_parts(
    api: Api, user: str, create_thread: Factory
) -> None:
    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid, [{"type": "reasoning", "text": "thinking"}])
    assert reply["content"] == [{"type": "reasoning", "text": "thinking"}]
    assert assert_problem(await delta(api, user, tid, reply["id"], 8, "x"), 409)["reason"] == "state"
    # Its event carries the parts (not the text column), and so does the list.
    created = [data for kind, data in await recorded_events(api, user) if kind == "message.created"]
    assert created[-1]["content"] == reply["content"]


@pytest.mark.parametrize("change", ["delete", "close"])
async def test_a_retried_delta_is_judged_on_the_reply_as_it_was_read_even_if_it_changes_meanwhile(
    api: Api, user: str, create_thread: Factory, monkeypatch: pytest.MonkeyPatch, change: str
) -> None:
    """A delta that did not apply (here a retry of stored text) is explained by reading the reply's state and
    then its stored text. A delete or a close committing between the two once made the retry a 500 (the row was
    gone) or a wrong 409 (the deltas folded away): the reads now hold the row's lock, so the change waits."""
    from threadstore.messages import repository

    tid = (await create_thread())["id"]
    reply = await start_reply(api, user, tid)
    assert (await delta(api, user, tid, reply["id"], 0, "Hello")).status_code == 200
    url = f"/api/threads/{tid}/messages/{reply['id']}"
    changing: list[asyncio.Task[Any]] = []
    real = repository.delta_state

    async def with_a_change_between(*args: Any) -> Any:
        state = await real(*args)
        if not changing:
            if change == "delete":
                request = api.request("DELETE", url, user=user)
            else:
                request = api.request("PATCH", url, user=user, json={"status": "completed"})
            changing.append(asyncio.ensure_future(request))
            await asyncio.wait(changing, timeout=0.5)  # it commits now, unless the reply's row is locked
        return state

    monkeypatch.setattr(repository, "delta_state", with_a_change_between)
    retried = await delta(api, user, tid, reply["id"], 0, "Hello")
    assert retried.status_code == 200, retried.text
    assert retried.json()["length"] == 5
    changed = await changing[0]
    assert changed.status_code == (204 if change == "delete" else 200), changed.text
