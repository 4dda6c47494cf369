"""POST /api/threads/{id}/fork: a new thread holding a copy of a path, as a chain."""

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


async def fork(api: Api, user: str, thread_id: str, status: int = 201, **body: Any) -> Any:
    response = await api.request("POST", f"/api/threads/{thread_id}/fork", user=user, json=body)
    assert response.status_code == status, response.text
    return response


async def path(api: Api, user: str, thread_id: str) -> list[dict[str, Any]]:
    response = await api.request("GET", f"/api/threads/{thread_id}/messages?limit=100", user=user)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def branched(api: Api, user: str, create_thread: Factory) -> tuple[dict[str, Any], dict[str, Any]]:
    thread = await create_thread(title="Trip", metadata={"topic": "travel"})
    tid = thread["id"]
    m = {"q1": await append(api, user, tid, "q1", metadata={"k": "v"})}
    m["a1"] = await append(api, user, tid, "a1", role="assistant")
    m["a1b"] = await append(api, user, tid, "a1b", role="assistant", parent_id=m["q1"]["id"])
    m["q2"] = await append(api, user, tid, "q2")
    return thread, m


async def test_fork_copies_the_current_path_as_a_chain_with_new_ids(
    api: Api, user: str, create_thread: Factory
) -> None:
    source, m = await branched(api, user, create_thread)
    response = await fork(api, user, source["id"])
    forked = response.json()
    assert response.headers["location"] == f"/api/threads/{forked['id']}"
    assert response.headers["etag"] == '"1"'
    assert forked["id"] != source["id"]
    assert (forked["title"], forked["metadata"], forked["status"], forked["version"]) == (
        "Trip",
        {"topic": "travel"},
        "active",
        1,
    )
    assert forked["message_count"] == 3
    copied = await path(api, user, forked["id"])
    original = [m["q1"], m["a1b"], m["q2"]]
    assert [c["content"] for c in copied] == ["q1", "a1b", "q2"]
    assert [c["seq"] for c in copied] == [1, 2, 3] == [c["depth"] for c in copied]
    assert [c["role"] for c in copied] == [o["role"] for o in original]
    assert [c["metadata"] for c in copied] == [o["metadata"] for o in original]
    assert [c["created_at"] for c in copied] == [o["created_at"] for o in original]
    assert not {c["id"] for c in copied} & {o["id"] for o in original}
    assert [c["parent_id"] for c in copied] == [None, copied[0]["id"], copied[1]["id"]]
    assert all(c["sibling_index"] == 1 and c["sibling_count"] == 1 for c in copied)
    assert forked["current_message_id"] == copied[-1]["id"]
    assert forked["last_message_at"] == copied[-1]["created_at"]
    fetched = (await api.request("GET", f"/api/threads/{forked['id']}", user=user)).json()
    assert fetched == forked
    # the source is untouched
    assert (
        len((await api.request("GET", f"/api/threads/{source['id']}/messages?view=all", user=user)).json()["data"]) == 4
    )


async def test_fork_of_a_named_message_with_its_own_title_and_metadata(
    api: Api, user: str, create_thread: Factory
) -> None:
    source, m = await branched(api, user, create_thread)
    forked = (await fork(api, user, source["id"], message_id=m["a1"]["id"], title="Other", metadata={"x": "1"})).json()
    assert (forked["title"], forked["metadata"]) == ("Other", {"x": "1"})
    assert [c["content"] for c in await path(api, user, forked["id"])] == ["q1", "a1"]
    untitled = (await fork(api, user, source["id"], title=None)).json()
    assert untitled["title"] is None


async def test_fork_of_an_empty_or_archived_thread(api: Api, user: str, create_thread: Factory) -> None:
    empty = await create_thread()
    forked = (await fork(api, user, empty["id"])).json()
    assert (forked["message_count"], forked["current_message_id"], forked["last_message_at"]) == (0, None, None)
    source, _ = await branched(api, user, create_thread)
    assert (await api.request("DELETE", f"/api/threads/{source['id']}", user=user)).status_code == 200
    from_archived = (await fork(api, user, source["id"])).json()
    assert from_archived["status"] == "active" and from_archived["message_count"] == 3
    # the copy is a thread like any other: it takes appends
    appended = await append(api, user, from_archived["id"], "more")
    assert appended["seq"] == 4 and appended["parent_id"] == from_archived["current_message_id"]


async def test_fork_is_one_thread_created_event(api: Api, user: str, create_thread: Factory) -> None:
    source, _ = await branched(api, user, create_thread)
    before = len(await recorded_events(api, user))
    forked = (await fork(api, user, source["id"])).json()
    events = await recorded_events(api, user)
    assert events[before:] == [("thread.created", forked)]


async def test_fork_bad_input(api: Api, user: str, create_thread: Factory) -> None:
    source, _ = await branched(api, user, create_thread)
    elsewhere = await create_thread(messages=[{"content": "x"}])
    for message_id in (elsewhere["current_message_id"], "msg_" + "B" * 22, ""):
        response = await api.request(
            "POST", f"/api/threads/{source['id']}/fork", user=user, json={"message_id": message_id}
        )
        assert_problem(response, 422)
        assert response.json()["errors"] == [{"loc": ["body", "message_id"], "msg": "not found"}]
    for body in ({"message_id": None}, {"metadata": None}, {"unknown": 1}):
        assert_problem(await api.request("POST", f"/api/threads/{source['id']}/fork", user=user, json=body), 422)
    stranger = new_user()
    assert_problem(await api.request("POST", f"/api/threads/{source['id']}/fork", user=stranger, json={}), 404)
    threads = (await api.request("GET", "/api/threads?status=all", user=user)).json()["data"]
    assert len(threads) == 2  # nothing was created by the failures


async def test_fork_with_an_idempotency_key_replays_and_belongs_to_its_path(
    api: Api, user: str, create_thread: Factory
) -> None:
    source, _ = await branched(api, user, create_thread)
    url = f"/api/threads/{source['id']}/fork"
    first = await api.request("POST", url, user=user, json={}, headers={"Idempotency-Key": "fork-1"})
    again = await api.request("POST", url, user=user, json={}, headers={"Idempotency-Key": "fork-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    elsewhere = await api.request(
        "POST",
        f"/api/threads/{source['id']}/messages",
        user=user,
        json={"content": "x"},
        headers={"Idempotency-Key": "fork-1"},
    )
    assert_problem(elsewhere, 422)
    threads = (await api.request("GET", "/api/threads", user=user)).json()["data"]
    assert len(threads) == 2
