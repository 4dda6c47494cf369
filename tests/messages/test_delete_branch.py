"""DELETE /api/threads/{id}/messages/{message_id}: a message and all its descendants go, as one change."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, Factory, new_user
from tests.http.problems import assert_problem
from tests.threads.helpers import recorded_events

pytestmark = pytest.mark.through_pgbouncer


async def append(api: Api, user: str, thread_id: str, content: str, **body: Any) -> dict[str, Any]:
    response = await api.request(
        "POST", f"/api/threads/{thread_id}/messages", user=user, json={"content": content, **body}
    )
    assert response.status_code == 201, response.text
    message: dict[str, Any] = response.json()
    return message


async def thread_of(api: Api, user: str, thread_id: str) -> dict[str, Any]:
    response = await api.request("GET", f"/api/threads/{thread_id}", user=user)
    assert response.status_code == 200, response.text
    thread: dict[str, Any] = response.json()
    return thread


async def every_message(api: Api, user: str, thread_id: str) -> list[dict[str, Any]]:
    response = await api.request("GET", f"/api/threads/{thread_id}/messages?view=all&limit=100", user=user)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def active_path(api: Api, user: str, thread_id: str) -> list[str]:
    response = await api.request("GET", f"/api/threads/{thread_id}/messages?limit=100", user=user)
    assert response.status_code == 200, response.text
    return [m["content"] for m in response.json()["data"]]


async def delete(api: Api, user: str, thread_id: str, message_id: str) -> Any:
    return await api.request("DELETE", f"/api/threads/{thread_id}/messages/{message_id}", user=user)


async def tree(api: Api, user: str, create_thread: Factory) -> tuple[str, dict[str, dict[str, Any]]]:
    """q1 → a1 → q2 → a2, with a regenerated a1' (a sibling of a1) → q3, then a switch back to a2's branch
    (current a2)."""
    thread = await create_thread()
    tid = thread["id"]
    m: dict[str, dict[str, Any]] = {}
    m["q1"] = await append(api, user, tid, "q1")
    m["a1"] = await append(api, user, tid, "a1", role="assistant")
    m["q2"] = await append(api, user, tid, "q2")
    m["a2"] = await append(api, user, tid, "a2", role="assistant")
    m["a1b"] = await append(api, user, tid, "a1b", role="assistant", parent_id=m["q1"]["id"])
    m["q3"] = await append(api, user, tid, "q3")
    switched = await api.request("PATCH", f"/api/threads/{tid}", user=user, json={"current_message_id": m["a2"]["id"]})
    assert switched.status_code == 200, switched.text
    assert switched.json()["current_message_id"] == m["a2"]["id"]
    return tid, m


async def test_deleting_a_message_deletes_its_branch_and_nothing_else(
    api: Api, user: str, create_thread: Factory
) -> None:
    tid, m = await tree(api, user, create_thread)
    before = await thread_of(api, user, tid)
    response = await delete(api, user, tid, m["a1b"]["id"])
    assert response.status_code == 204, response.text
    assert response.content == b""
    assert [x["content"] for x in await every_message(api, user, tid)] == ["q1", "a1", "q2", "a2"]
    after = await thread_of(api, user, tid)
    assert after["message_count"] == before["message_count"] - 2 == 4
    assert after["version"] == before["version"] + 1
    assert after["current_message_id"] == m["a2"]["id"]  # the current message was not in the branch
    gone = await api.request("GET", f"/api/threads/{tid}/messages/{m['q3']['id']}", user=user)
    assert_problem(gone, 404)
    a1 = (await api.request("GET", f"/api/threads/{tid}/messages/{m['a1']['id']}", user=user)).json()
    assert a1["sibling_count"] == 1


async def test_deleting_the_current_branch_moves_current_to_the_newest_leaf_below_the_parent(
    api: Api, user: str, create_thread: Factory
) -> None:
    tid, m = await tree(api, user, create_thread)
    response = await delete(api, user, tid, m["a1"]["id"])  # a1 → q2 → a2, the active path's tail
    assert response.status_code == 204, response.text
    after = await thread_of(api, user, tid)
    assert after["current_message_id"] == m["q3"]["id"]  # q1's remaining child is a1b, whose leaf is q3
    assert await active_path(api, user, tid) == ["q1", "a1b", "q3"]
    assert after["message_count"] == 3
    # seq values are never reused
    appended = await append(api, user, tid, "q4")
    assert appended["seq"] == 7
    assert appended["parent_id"] == m["q3"]["id"]


async def test_deleting_a_root_leaves_the_newest_remaining_root_current_and_the_last_nothing(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread(messages=[{"content": "first"}, {"content": "reply", "role": "assistant"}])
    tid = thread["id"]
    edited = await append(api, user, tid, "first, edited", parent_id=None)
    assert edited["parent_id"] is None and edited["sibling_index"] == 2 and edited["sibling_count"] == 2
    assert_status = await delete(api, user, tid, edited["id"])
    assert assert_status.status_code == 204
    after = await thread_of(api, user, tid)
    assert await active_path(api, user, tid) == ["first", "reply"]
    assert after["current_message_id"] == thread["current_message_id"]
    roots = await api.request("GET", f"/api/threads/{tid}/messages?view=all", user=user)
    first_id = roots.json()["data"][0]["id"]
    assert (await delete(api, user, tid, first_id)).status_code == 204
    emptied = await thread_of(api, user, tid)
    assert emptied["current_message_id"] is None
    assert emptied["message_count"] == 0
    assert emptied["last_message_at"] is None
    assert await active_path(api, user, tid) == []
    restarted = await append(api, user, tid, "again")
    assert restarted["parent_id"] is None and restarted["depth"] == 1 and restarted["seq"] == 4


async def test_delete_is_one_change_with_message_deleted_then_thread_updated(
    api: Api, user: str, create_thread: Factory
) -> None:
    tid, m = await tree(api, user, create_thread)
    assert (await delete(api, user, tid, m["q2"]["id"])).status_code == 204
    kinds = await recorded_events(api, user)
    deleted = [data for kind, data in kinds if kind == "message.deleted"]
    assert deleted == [{"id": m["q2"]["id"], "thread_id": tid, "deleted_count": 2}]
    assert [kind for kind, _ in kinds[-2:]] == ["message.deleted", "thread.updated"]
    assert kinds[-1][1] == await thread_of(api, user, tid)
    # The outbox keeps no content of the deleted messages: their events referred to it, and it is gone (a
    # stream skips such an event: tests/events).
    for kind, data in kinds:
        if kind == "message.created" and data["id"] in (m["q2"]["id"], m["a2"]["id"]):
            assert "content" not in data


async def test_a_keyed_append_whose_message_was_deleted_is_not_replayed(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread()
    tid = thread["id"]
    url = f"/api/threads/{tid}/messages"
    first = await api.request("POST", url, user=user, json={"content": "x"}, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == 201
    kept = await api.request("POST", url, user=user, json={"content": "y"}, headers={"Idempotency-Key": "k-2"})
    assert (await delete(api, user, tid, first.json()["id"])).status_code == 204
    again = await api.request("POST", url, user=user, json={"content": "x"}, headers={"Idempotency-Key": "k-1"})
    assert_problem(again, 404)
    assert [x["content"] for x in await every_message(api, user, tid)] == []  # y was x's child: gone too
    replay = await api.request("POST", url, user=user, json={"content": "y"}, headers={"Idempotency-Key": "k-2"})
    assert_problem(replay, 404)
    assert kept.status_code == 201


async def test_delete_on_an_archived_thread_is_409_and_deletes_nothing(
    api: Api, user: str, create_thread: Factory
) -> None:
    tid, m = await tree(api, user, create_thread)
    assert (await api.request("DELETE", f"/api/threads/{tid}", user=user)).status_code == 200
    assert_problem(await delete(api, user, tid, m["a1b"]["id"]), 409)
    assert len(await every_message(api, user, tid)) == 6


async def test_delete_of_a_message_not_of_the_thread_or_the_user_is_404(
    api: Api, user: str, create_thread: Factory
) -> None:
    tid, m = await tree(api, user, create_thread)
    other_thread = await create_thread(messages=[{"content": "elsewhere"}])
    elsewhere = other_thread["current_message_id"]
    assert_problem(await delete(api, user, tid, elsewhere), 404)
    assert_problem(await delete(api, user, tid, "msg_" + "A" * 22), 404)
    stranger = new_user()
    assert_problem(await delete(api, stranger, tid, m["q1"]["id"]), 404)
    assert len(await every_message(api, user, tid)) == 6
    assert len(await every_message(api, user, other_thread["id"])) == 1
