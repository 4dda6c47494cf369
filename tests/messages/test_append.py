"""POST /api/threads/{id}/messages: shape, validation, effect on the thread, ownership and archived threads."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Api, Factory, new_user
from tests.http.problems import RFC3339_MS_Z, assert_problem, message_count
from tests.messages.branching import MESSAGE_FIELDS

pytestmark = pytest.mark.through_pgbouncer

MAX_CONTENT = 262_144


async def append(api: Api, user: str, thread_id: str, **body: Any) -> dict[str, Any]:
    response = await api.request("POST", f"/api/threads/{thread_id}/messages", user=user, json=body)
    assert response.status_code == 201, response.text
    message: dict[str, Any] = response.json()
    return message


async def get_thread(api: Api, user: str, thread_id: str) -> dict[str, Any]:
    response = await api.request("GET", f"/api/threads/{thread_id}", user=user)
    assert response.status_code == 200, response.text
    thread: dict[str, Any] = response.json()
    return thread


async def test_append_returns_201_with_the_message(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    response = await api.request(
        "POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": "How long is the flight?"}
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == MESSAGE_FIELDS
    assert (body["status"], body["finish_reason"], body["model"], body["usage"], body["feedback"]) == (
        "completed",
        None,
        None,
        None,
        None,
    )
    assert body["object"] == "message"
    assert body["thread_id"] == thread["id"]
    assert body["seq"] == 1
    assert body["content"] == "How long is the flight?"
    assert isinstance(body["id"], str) and len(body["id"]) >= 16


async def test_append_defaults_role_to_user_and_metadata_to_empty(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    message = await append(api, user, thread["id"], content="hi")
    assert message["role"] == "user"
    assert message["metadata"] == {}


async def test_append_created_at_is_rfc3339_utc_milliseconds(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    message = await append(api, user, thread["id"], content="hi")
    assert RFC3339_MS_Z.match(message["created_at"]), message["created_at"]


async def test_append_keeps_metadata(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    metadata = {"model": "gpt", "tokens": 12, "nested": {"a": [1, 2]}}
    message = await append(api, user, thread["id"], content="hi", metadata=metadata)
    assert message["metadata"] == metadata


@pytest.mark.parametrize("role", ["user", "assistant", "system", "tool"])
async def test_append_accepts_every_contract_role(api: Api, user: str, create_thread: Factory, role: str) -> None:
    thread = await create_thread()
    message = await append(api, user, thread["id"], content="hi", role=role)
    assert message["role"] == role


@pytest.mark.parametrize("role", ["bot", "User", "", None, 1])
async def test_append_rejects_other_roles_with_422(api: Api, user: str, create_thread: Factory, role: Any) -> None:
    thread = await create_thread()
    response = await api.request(
        "POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": "hi", "role": role}
    )
    assert_problem(response, 422)
    assert await message_count(api, thread["id"]) == 0


async def test_append_accepts_content_of_the_maximum_length(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    message = await append(api, user, thread["id"], content="x" * MAX_CONTENT)
    assert len(message["content"]) == MAX_CONTENT


async def test_append_counts_content_in_characters_not_bytes(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    message = await append(api, user, thread["id"], content="é" * MAX_CONTENT)
    assert len(message["content"]) == MAX_CONTENT


@pytest.mark.parametrize("content", ["", "x" * (MAX_CONTENT + 1)], ids=["empty", "one-over-max"])
async def test_append_rejects_content_out_of_bounds_with_422(
    api: Api, user: str, create_thread: Factory, content: str
) -> None:
    thread = await create_thread()
    response = await api.request("POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": content})
    body = assert_problem(response, 422)
    assert any(e["loc"][-1] == "content" for e in body["errors"]), body
    assert (await get_thread(api, user, thread["id"]))["message_count"] == 0


@pytest.mark.parametrize("body", [{}, {"content": None}, {"content": 5}, {"content": ["a"]}])
async def test_append_requires_string_content(
    api: Api, user: str, create_thread: Factory, body: dict[str, Any]
) -> None:
    thread = await create_thread()
    response = await api.request("POST", f"/api/threads/{thread['id']}/messages", user=user, json=body)
    assert_problem(response, 422)


async def test_append_rejects_unknown_fields(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    response = await api.request(
        "POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": "hi", "contnet": "typo"}
    )
    assert_problem(response, 422)
    assert await message_count(api, thread["id"]) == 0


async def test_append_bumps_version_count_and_timestamps(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    assert thread["version"] == 1 and thread["message_count"] == 0 and thread["last_message_at"] is None
    await asyncio.sleep(0.002)  # timestamps have millisecond precision
    message = await append(api, user, thread["id"], content="hi")
    after = await get_thread(api, user, thread["id"])
    assert after["version"] == 2
    assert after["message_count"] == 1
    assert after["last_message_at"] == message["created_at"]
    assert after["updated_at"] == message["created_at"]
    assert after["updated_at"] > thread["updated_at"]
    assert after["created_at"] == thread["created_at"]


async def test_append_sets_the_etag_to_the_new_version(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    await append(api, user, thread["id"], content="hi")
    response = await api.request("GET", f"/api/threads/{thread['id']}", user=user)
    assert response.headers["etag"] == '"2"'


async def test_append_numbers_messages_after_the_initial_ones(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread(messages=[{"content": "a"}, {"content": "b", "role": "assistant"}])
    message = await append(api, user, thread["id"], content="c")
    assert message["seq"] == 3
    after = await get_thread(api, user, thread["id"])
    assert after["message_count"] == 3
    assert after["version"] == 2


async def test_append_moves_the_thread_to_the_top_of_the_list(api: Api, user: str, create_thread: Factory) -> None:
    older = await create_thread(title="older")
    await asyncio.sleep(0.002)
    newer = await create_thread(title="newer")
    listed = (await api.request("GET", "/api/threads", user=user)).json()["data"]
    assert [t["id"] for t in listed] == [newer["id"], older["id"]]
    await asyncio.sleep(0.002)
    await append(api, user, older["id"], content="bump")
    listed = (await api.request("GET", "/api/threads", user=user)).json()["data"]
    assert [t["id"] for t in listed] == [older["id"], newer["id"]]


async def test_append_to_an_archived_thread_is_409_and_writes_nothing(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread(messages=[{"content": "a"}])
    archived = (await api.request("DELETE", f"/api/threads/{thread['id']}", user=user)).json()
    assert archived["status"] == "archived"
    response = await api.request("POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": "b"})
    assert assert_problem(response, 409)["reason"] == "archived"
    after = (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()
    assert after["message_count"] == 1
    assert after["version"] == archived["version"]
    assert after["updated_at"] == archived["updated_at"]
    assert await message_count(api, thread["id"]) == 1


async def test_append_works_again_after_restoring_the_thread(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    await api.request("DELETE", f"/api/threads/{thread['id']}", user=user)
    restored = await api.request("PATCH", f"/api/threads/{thread['id']}", user=user, json={"status": "active"})
    assert restored.status_code == 200, restored.text
    message = await append(api, user, thread["id"], content="back")
    assert message["seq"] == 1


async def test_append_to_another_users_thread_is_404_like_a_missing_one(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread()
    stranger = new_user()
    theirs = await api.request("POST", f"/api/threads/{thread['id']}/messages", user=stranger, json={"content": "x"})
    missing = await api.request("POST", "/api/threads/thr_doesnotexist/messages", user=stranger, json={"content": "x"})
    theirs_body = assert_problem(theirs, 404)
    missing_body = assert_problem(missing, 404)
    assert {k: v for k, v in theirs_body.items() if k != "request_id"} == {
        k: v for k, v in missing_body.items() if k != "request_id"
    }
    owner_view = await get_thread(api, user, thread["id"])
    assert owner_view["message_count"] == 0 and owner_view["version"] == 1


async def test_append_to_another_users_archived_thread_is_404_not_409(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread()
    await api.request("DELETE", f"/api/threads/{thread['id']}", user=user)
    response = await api.request(
        "POST", f"/api/threads/{thread['id']}/messages", user=new_user(), json={"content": "x"}
    )
    assert_problem(response, 404)


@pytest.mark.parametrize(
    "metadata",
    [
        None,
        ["not", "an", "object"],
        "text",
        {f"k{i}": i for i in range(65)},
        {"k" * 65: 1},
        {"": 1},
        {"blob": "x" * (16 * 1024)},
    ],
    ids=["null", "list", "string", "65-keys", "65-char-key", "empty-key", "over-16-KiB"],
)
async def test_append_rejects_metadata_outside_the_limits(
    api: Api, user: str, create_thread: Factory, metadata: Any
) -> None:
    thread = await create_thread()
    response = await api.request(
        "POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": "hi", "metadata": metadata}
    )
    assert_problem(response, 422)
    assert await message_count(api, thread["id"]) == 0


async def test_append_accepts_metadata_at_the_limits(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    metadata = {f"{i:02d}" + "k" * 62: i for i in range(64)}
    message = await append(api, user, thread["id"], content="hi", metadata=metadata)
    assert message["metadata"] == metadata
