"""Idempotency-Key on POST /api/threads and POST /api/threads/{id}/messages: replay, mismatch, scope."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import Api, Factory, new_user
from tests.http.problems import assert_problem, key_count, message_count, thread_count

pytestmark = pytest.mark.through_pgbouncer

THREAD_BODY: dict[str, Any] = {
    "title": "Trip to Lisbon",
    "metadata": {"topic": "travel"},
    "messages": [{"content": "How long is the flight?"}, {"role": "assistant", "content": "About 2 hours."}],
}


def keyed(key: str | bytes) -> dict[str, Any]:
    return {"Idempotency-Key": key}


async def create(api: Api, user: str, key: str, body: dict[str, Any] = THREAD_BODY) -> httpx.Response:
    return await api.request("POST", "/api/threads", user=user, json=body, headers=keyed(key))


async def append(api: Api, user: str, thread_id: str, key: str, body: dict[str, Any]) -> httpx.Response:
    return await api.request("POST", f"/api/threads/{thread_id}/messages", user=user, json=body, headers=keyed(key))


async def test_thread_create_repeat_returns_the_first_response(api: Api, user: str) -> None:
    first = await create(api, user, "create-1")
    second = await create(api, user, "create-1")
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"] == f"/api/threads/{first.json()['id']}"
    assert second.headers["etag"] == first.headers["etag"]


async def test_thread_create_repeat_writes_nothing(api: Api, user: str) -> None:
    first = await create(api, user, "create-2")
    await create(api, user, "create-2")
    await create(api, user, "create-2")
    assert await thread_count(api, user) == 1
    assert await message_count(api, first.json()["id"]) == 2
    listed = (await api.request("GET", "/api/threads", user=user)).json()["data"]
    assert [t["id"] for t in listed] == [first.json()["id"]]
    assert listed[0]["version"] == 1 and listed[0]["message_count"] == 2


async def test_thread_create_repeat_replays_the_initial_messages_too(api: Api, user: str) -> None:
    first = await create(api, user, "create-3")
    await create(api, user, "create-3")
    thread_id = first.json()["id"]
    listed = (await api.request("GET", f"/api/threads/{thread_id}/messages", user=user)).json()["data"]
    assert [(m["seq"], m["content"]) for m in listed] == [(1, "How long is the flight?"), (2, "About 2 hours.")]


async def test_without_a_key_every_create_is_new(api: Api, user: str, create_thread: Factory) -> None:
    one = await create_thread(title="same")
    two = await create_thread(title="same")
    assert one["id"] != two["id"]
    assert await thread_count(api, user) == 2


async def test_message_append_repeat_returns_the_first_response(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    first = await append(api, user, thread["id"], "append-1", {"content": "hello"})
    second = await append(api, user, thread["id"], "append-1", {"content": "hello"})
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()


async def test_message_append_repeat_writes_nothing(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    first = await append(api, user, thread["id"], "append-2", {"content": "hello"})
    await append(api, user, thread["id"], "append-2", {"content": "hello"})
    after = (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()
    assert after["message_count"] == 1
    assert after["version"] == 2
    assert after["updated_at"] == first.json()["created_at"]
    assert await message_count(api, thread["id"]) == 1


async def test_a_new_key_appends_a_new_message(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    first = await append(api, user, thread["id"], "append-a", {"content": "hello"})
    second = await append(api, user, thread["id"], "append-b", {"content": "hello"})
    assert (first.json()["seq"], second.json()["seq"]) == (1, 2)
    assert first.json()["id"] != second.json()["id"]


async def test_same_key_with_a_different_body_is_422(api: Api, user: str) -> None:
    first = await create(api, user, "mismatch-1")
    assert first.status_code == 201
    response = await create(api, user, "mismatch-1", {**THREAD_BODY, "title": "Trip to Porto"})
    assert_problem(response, 422)
    assert await thread_count(api, user) == 1


async def test_same_key_with_a_different_message_body_is_422(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    assert (await append(api, user, thread["id"], "mismatch-2", {"content": "a"})).status_code == 201
    response = await append(api, user, thread["id"], "mismatch-2", {"content": "b"})
    assert_problem(response, 422)
    response = await append(api, user, thread["id"], "mismatch-2", {"content": "a", "role": "assistant"})
    assert_problem(response, 422)
    assert await message_count(api, thread["id"]) == 1


async def test_a_mismatch_does_not_replace_the_stored_response(api: Api, user: str) -> None:
    first = await create(api, user, "mismatch-3")
    await create(api, user, "mismatch-3", {"title": "other"})
    again = await create(api, user, "mismatch-3")
    assert again.status_code == 201 and again.json() == first.json()


async def test_keys_are_scoped_per_user(api: Api, user: str) -> None:
    other = new_user()
    mine = await create(api, user, "shared-key")
    theirs = await create(api, other, "shared-key")
    assert mine.status_code == theirs.status_code == 201
    assert mine.json()["id"] != theirs.json()["id"]
    assert await thread_count(api, user) == 1
    assert await thread_count(api, other) == 1


async def test_another_users_key_never_replays_my_thread(api: Api, user: str) -> None:
    mine = await create(api, user, "private-key")
    theirs = await create(api, new_user(), "private-key")
    assert mine.json()["id"] not in theirs.text


async def test_same_key_on_another_endpoint_is_422(api: Api, user: str) -> None:
    created = await create(api, user, "endpoint-key")
    assert created.status_code == 201
    response = await append(api, user, created.json()["id"], "endpoint-key", {"content": "hi"})
    assert_problem(response, 422)
    assert await message_count(api, created.json()["id"]) == 2


async def test_same_key_on_another_threads_messages_is_422(api: Api, user: str, create_thread: Factory) -> None:
    one = await create_thread()
    two = await create_thread()
    assert (await append(api, user, one["id"], "per-path", {"content": "hi"})).status_code == 201
    response = await append(api, user, two["id"], "per-path", {"content": "hi"})
    assert_problem(response, 422)
    assert await message_count(api, two["id"]) == 0


async def test_formatting_and_key_order_do_not_change_the_request(api: Api, user: str) -> None:
    compact = b'{"title":"Trip","metadata":{"a":1,"b":2}}'
    spaced = b'{\n  "metadata" : { "b" : 2, "a" : 1 },\n  "title" : "Trip"\n}'
    headers = {"Idempotency-Key": "format-key", "Content-Type": "application/json"}
    first = await api.request("POST", "/api/threads", user=user, content=compact, headers=headers)
    second = await api.request("POST", "/api/threads", user=user, content=spaced, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert await thread_count(api, user) == 1


async def test_an_explicit_default_is_the_same_request(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    first = await append(api, user, thread["id"], "default-key", {"content": "hi"})
    second = await append(api, user, thread["id"], "default-key", {"content": "hi", "role": "user", "metadata": {}})
    assert second.status_code == 201 and second.json() == first.json()
    assert await message_count(api, thread["id"]) == 1


async def test_a_key_of_255_printable_characters_is_accepted(api: Api, user: str) -> None:
    key = "".join(chr(0x21 + i % 94) for i in range(254)) + "k"
    assert len(key) == 255
    first = await create(api, user, key)
    second = await create(api, user, key)
    assert first.status_code == 201
    assert second.json()["id"] == first.json()["id"]


async def test_invalid_keys_are_400_and_write_nothing(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    invalid: list[str | bytes] = ["", "k" * 256, "tab\there", "del\x7f", "caf\xc3\xa9".encode("latin-1")]
    for key in invalid:
        created = await create(api, user, key)  # type: ignore[arg-type]
        assert_problem(created, 400)
        appended = await api.request(
            "POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": "x"}, headers=keyed(key)
        )
        assert_problem(appended, 400)
    assert await thread_count(api, user) == 1
    assert await message_count(api, thread["id"]) == 0
    assert await key_count(api, user) == 0


async def test_a_failed_request_stores_no_key(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    await api.request("DELETE", f"/api/threads/{thread['id']}", user=user)
    refused = await append(api, user, thread["id"], "after-restore", {"content": "hi"})
    assert_problem(refused, 409)
    assert await key_count(api, user) == 0

    restored = await api.request("PATCH", f"/api/threads/{thread['id']}", user=user, json={"status": "active"})
    assert restored.status_code == 200
    retried = await append(api, user, thread["id"], "after-restore", {"content": "hi"})
    assert retried.status_code == 201, retried.text
    assert retried.json()["seq"] == 1
    assert await message_count(api, thread["id"]) == 1


async def test_a_validation_failure_stores_no_key(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    refused = await append(api, user, thread["id"], "too-long", {"content": "x" * 262_145})
    assert_problem(refused, 422)
    assert await key_count(api, user) == 0
    fixed = await create(api, user, "too-long", {"title": "now valid"})
    assert fixed.status_code == 201, fixed.text


async def test_a_404_stores_no_key(api: Api, user: str, create_thread: Factory) -> None:
    missing = await append(api, user, "thr_missing", "nf-key", {"content": "hi"})
    assert_problem(missing, 404)
    assert await key_count(api, user) == 0
