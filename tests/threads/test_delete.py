"""DELETE /api/threads/{id}: archive (soft, idempotent) and permanent deletion with all messages."""

from __future__ import annotations

import pytest

from tests.conftest import Api, Factory
from tests.threads.helpers import (
    append,
    assert_problem,
    assert_thread_response,
    get_thread,
    listed_ids,
    parse_time,
    same_problem,
    stored_message_count,
)

pytestmark = pytest.mark.through_pgbouncer

URL = "/api/threads"


# --- archive ----------------------------------------------------------------------------------------------------


async def test_delete_archives_the_thread(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread(title="t", metadata={"a": "1"}, messages=[{"content": "hi"}])

    response = await api.request("DELETE", f"{URL}/{before['id']}", user=user)

    after = assert_thread_response(response)
    assert after["status"] == "archived"
    assert parse_time(after["archived_at"]) == parse_time(after["updated_at"])
    assert parse_time(after["updated_at"]) > parse_time(before["updated_at"])
    assert after["version"] == before["version"] + 1
    assert response.headers["etag"] == f'"{after["version"]}"'
    unchanged = ("id", "title", "metadata", "created_at", "message_count", "last_message_at")
    assert {k: after[k] for k in unchanged} == {k: before[k] for k in unchanged}
    assert await get_thread(api, user, before["id"]) == after


async def test_archive_keeps_the_messages(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(messages=[{"content": "one"}, {"content": "two"}])
    await api.request("DELETE", f"{URL}/{created['id']}", user=user)

    listed = await api.request("GET", f"{URL}/{created['id']}/messages", user=user)

    assert listed.status_code == 200
    assert [m["content"] for m in listed.json()["data"]] == ["one", "two"]


async def test_archive_is_idempotent(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()
    first = assert_thread_response(await api.request("DELETE", f"{URL}/{created['id']}", user=user))

    second = await api.request("DELETE", f"{URL}/{created['id']}", user=user)

    assert assert_thread_response(second) == first
    assert second.headers["etag"] == f'"{first["version"]}"'
    assert await get_thread(api, user, created["id"]) == first


async def test_appending_to_an_archived_thread_is_409(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()
    archived = assert_thread_response(await api.request("DELETE", f"{URL}/{created['id']}", user=user))

    assert_problem(await append(api, user, created["id"]), 409)

    assert await get_thread(api, user, created["id"]) == archived
    assert await stored_message_count(api, created["id"]) == 0


async def test_archived_thread_leaves_the_default_list_but_not_the_archived_one(
    api: Api, user: str, create_thread: Factory
) -> None:
    kept = (await create_thread())["id"]
    gone = (await create_thread())["id"]
    await api.request("DELETE", f"{URL}/{gone}", user=user)

    assert await listed_ids(api, user) == [kept]
    assert await listed_ids(api, user, status="archived") == [gone]
    assert await listed_ids(api, user, status="all") == [gone, kept]


async def test_archived_thread_can_be_restored_and_appended_to(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()
    await api.request("DELETE", f"{URL}/{created['id']}", user=user)

    restored = await api.request("PATCH", f"{URL}/{created['id']}", user=user, json={"status": "active"})

    assert assert_thread_response(restored)["archived_at"] is None
    assert (await append(api, user, created["id"])).status_code == 201
    assert await listed_ids(api, user) == [created["id"]]


async def test_permanent_false_archives(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()

    response = await api.request("DELETE", f"{URL}/{created['id']}", user=user, params={"permanent": "false"})

    assert assert_thread_response(response)["status"] == "archived"


async def test_archiving_another_users_thread_is_404_and_changes_nothing(
    api: Api, user: str, other_user: str, create_thread: Factory
) -> None:
    created = await create_thread()

    foreign = await api.request("DELETE", f"{URL}/{created['id']}", user=other_user)
    missing = await api.request("DELETE", f"{URL}/thr_missing000000000000000", user=other_user)

    assert same_problem(assert_problem(foreign, 404), assert_problem(missing, 404))
    assert await get_thread(api, user, created["id"]) == created


# --- permanent --------------------------------------------------------------------------------------------------


async def test_permanent_delete_is_204_with_no_body(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()

    response = await api.request("DELETE", f"{URL}/{created['id']}", user=user, params={"permanent": "true"})

    assert response.status_code == 204
    assert response.content == b""


async def test_permanently_deleted_thread_is_gone(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(messages=[{"content": "one"}, {"content": "two"}])
    response = await api.request("DELETE", f"{URL}/{created['id']}", user=user, params={"permanent": "true"})
    assert response.status_code == 204

    assert_problem(await api.request("GET", f"{URL}/{created['id']}", user=user), 404)
    assert_problem(await api.request("GET", f"{URL}/{created['id']}/messages", user=user), 404)
    assert_problem(await append(api, user, created["id"]), 404)
    patch = await api.request("PATCH", f"{URL}/{created['id']}", user=user, json={"title": "x"})
    assert_problem(patch, 404)
    assert await listed_ids(api, user, status="all") == []


async def test_permanent_delete_removes_the_messages_from_the_database(
    api: Api, user: str, create_thread: Factory
) -> None:
    created = await create_thread(messages=[{"content": "one"}, {"content": "two"}])
    assert await stored_message_count(api, created["id"]) == 2

    response = await api.request("DELETE", f"{URL}/{created['id']}", user=user, params={"permanent": "true"})

    assert response.status_code == 204
    assert await stored_message_count(api, created["id"]) == 0


async def test_second_permanent_delete_is_404(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()
    params = {"permanent": "true"}
    assert (await api.request("DELETE", f"{URL}/{created['id']}", user=user, params=params)).status_code == 204

    second = await api.request("DELETE", f"{URL}/{created['id']}", user=user, params=params)

    assert_problem(second, 404)
    archive = await api.request("DELETE", f"{URL}/{created['id']}", user=user)
    assert_problem(archive, 404)


async def test_permanent_delete_of_an_archived_thread(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()
    await api.request("DELETE", f"{URL}/{created['id']}", user=user)

    response = await api.request("DELETE", f"{URL}/{created['id']}", user=user, params={"permanent": "true"})

    assert response.status_code == 204
    assert await listed_ids(api, user, status="all") == []


async def test_permanent_delete_leaves_other_threads_alone(api: Api, user: str, create_thread: Factory) -> None:
    kept = await create_thread(messages=[{"content": "keep me"}])
    gone = await create_thread(messages=[{"content": "delete me"}])

    response = await api.request("DELETE", f"{URL}/{gone['id']}", user=user, params={"permanent": "true"})

    assert response.status_code == 204
    assert await get_thread(api, user, kept["id"]) == kept
    assert await stored_message_count(api, kept["id"]) == 1


async def test_permanently_deleting_another_users_thread_is_404_and_deletes_nothing(
    api: Api, user: str, other_user: str, create_thread: Factory
) -> None:
    created = await create_thread(messages=[{"content": "mine"}])
    params = {"permanent": "true"}

    foreign = await api.request("DELETE", f"{URL}/{created['id']}", user=other_user, params=params)
    missing = await api.request("DELETE", f"{URL}/thr_missing000000000000000", user=other_user, params=params)

    assert same_problem(assert_problem(foreign, 404), assert_problem(missing, 404))
    assert await get_thread(api, user, created["id"]) == created
    assert await stored_message_count(api, created["id"]) == 1


@pytest.mark.parametrize("value", ["yes please", "2"])
async def test_permanent_must_be_a_boolean(api: Api, user: str, create_thread: Factory, value: str) -> None:
    created = await create_thread()

    response = await api.request("DELETE", f"{URL}/{created['id']}", user=user, params={"permanent": value})

    assert_problem(response, 422)
    assert await get_thread(api, user, created["id"]) == created
