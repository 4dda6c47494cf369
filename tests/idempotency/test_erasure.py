"""A permanent delete erases the stored responses of the keys that wrote its thread (API.md, version 2): a repeat
of such a key answers 404, as a missing thread does, and creates nothing. Other keys keep replaying."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from tests.conftest import Api, Factory, new_user
from tests.http.problems import assert_problem, key_count, message_count, thread_count
from tests.idempotency.test_expiry import age_key
from tests.threads.helpers import recorded_events, same_problem
from threadstore.db.tables import idempotency_keys, messages
from threadstore.db.unit_of_work import Tx
from threadstore.idempotency import service as idempotency

BODY: dict[str, Any] = {"title": "Secret plans", "messages": [{"content": "the secret"}]}
TTL = 60
CONCURRENT = 20


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"idempotency_ttl_seconds": TTL}


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


async def create(api: Api, user: str, key: str, body: dict[str, Any] = BODY) -> httpx.Response:
    return await api.request("POST", "/api/threads", user=user, json=body, headers=keyed(key))


async def append(api: Api, user: str, thread_id: str, key: str, content: str = "more secrets") -> httpx.Response:
    url = f"/api/threads/{thread_id}/messages"
    return await api.request("POST", url, user=user, json={"content": content}, headers=keyed(key))


async def delete_for_good(api: Api, user: str, thread_id: str) -> httpx.Response:
    return await api.request("DELETE", f"/api/threads/{thread_id}", user=user, params={"permanent": "true"})


async def missing_thread_problem(api: Api, user: str, thread_id: str) -> dict[str, Any]:
    return assert_problem(await api.request("GET", f"/api/threads/{thread_id}", user=user), 404)


async def stored_message_total(api: Api) -> int:
    async with api.database.engine.connect() as conn:
        return len((await conn.execute(select(messages.c.id))).all())


def assert_gone(response: httpx.Response, expected: dict[str, Any]) -> None:
    """The 404 of a missing thread, made for this request: not a replay, and none of the deleted content."""
    assert same_problem(assert_problem(response, 404), expected)
    assert "idempotent-replayed" not in response.headers
    assert "secret" not in response.text


async def test_a_create_key_of_a_deleted_thread_answers_404_and_creates_nothing(api: Api, user: str) -> None:
    created = await create(api, user, "create-then-delete")
    thread_id = created.json()["id"]
    assert (await delete_for_good(api, user, thread_id)).status_code == 204
    events = await recorded_events(api, user)
    total = await stored_message_total(api)

    again = await create(api, user, "create-then-delete")

    assert_gone(again, await missing_thread_problem(api, user, thread_id))
    assert await thread_count(api, user) == 0
    assert await stored_message_total(api) == total
    assert await recorded_events(api, user) == events  # nothing new in the outbox either
    assert await key_count(api, user) == 1


async def test_an_append_key_of_a_deleted_thread_answers_404_and_creates_nothing(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread(title="t")
    appended = await append(api, user, thread["id"], "append-then-delete")
    assert appended.status_code == 201
    assert (await delete_for_good(api, user, thread["id"])).status_code == 204
    events = await recorded_events(api, user)

    again = await append(api, user, thread["id"], "append-then-delete")

    assert_gone(again, await missing_thread_problem(api, user, thread["id"]))
    assert await message_count(api, thread["id"]) == 0
    assert await thread_count(api, user) == 0
    assert await recorded_events(api, user) == events


async def test_every_key_of_the_thread_is_erased_and_none_of_another(api: Api, user: str) -> None:
    gone = (await create(api, user, "gone-create")).json()
    kept_response = await create(api, user, "kept-create", {"title": "kept"})
    kept = kept_response.json()
    gone_appends = [await append(api, user, gone["id"], f"gone-append-{i}") for i in range(3)]
    kept_append = await append(api, user, kept["id"], "kept-append")
    assert all(r.status_code == 201 for r in [*gone_appends, kept_append])

    assert (await delete_for_good(api, user, gone["id"])).status_code == 204

    problem = await missing_thread_problem(api, user, gone["id"])
    assert_gone(await create(api, user, "gone-create"), problem)
    for i in range(3):
        assert_gone(await append(api, user, gone["id"], f"gone-append-{i}"), problem)
    replayed = await create(api, user, "kept-create", {"title": "kept"})
    assert (replayed.status_code, replayed.content) == (201, kept_response.content)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.headers["location"] == kept_response.headers["location"]
    replayed = await append(api, user, kept["id"], "kept-append")
    assert (replayed.status_code, replayed.content) == (201, kept_append.content)
    assert await thread_count(api, user) == 1
    assert await message_count(api, kept["id"]) == 1


async def test_another_users_keys_are_untouched(api: Api, user: str) -> None:
    other = new_user()
    mine = (await create(api, user, "same-key")).json()
    theirs = await create(api, other, "same-key")
    assert theirs.status_code == 201

    assert (await delete_for_good(api, user, mine["id"])).status_code == 204

    assert_problem(await create(api, user, "same-key"), 404)
    replayed = await create(api, other, "same-key")
    assert (replayed.status_code, replayed.content) == (201, theirs.content)


async def test_a_refused_permanent_delete_erases_nothing(api: Api, user: str) -> None:
    created = await create(api, user, "not-yours")
    refused = await delete_for_good(api, new_user(), created.json()["id"])
    assert_problem(refused, 404)

    replayed = await create(api, user, "not-yours")

    assert (replayed.status_code, replayed.content) == (201, created.content)


async def test_archiving_keeps_the_replays(api: Api, user: str) -> None:
    created = await create(api, user, "archived")
    appended = await append(api, user, created.json()["id"], "archived-append")
    archived = await api.request("DELETE", f"/api/threads/{created.json()['id']}", user=user)
    assert archived.json()["status"] == "archived"

    assert (await create(api, user, "archived")).content == created.content
    # A replay is the stored answer: the append was 201 before the archive, and it stays 201 (not 409).
    replayed = await append(api, user, created.json()["id"], "archived-append")
    assert (replayed.status_code, replayed.content) == (201, appended.content)


async def test_an_erased_key_still_belongs_to_its_first_request(api: Api, user: str) -> None:
    thread_id = (await create(api, user, "bound")).json()["id"]
    await delete_for_good(api, user, thread_id)

    other_body = await create(api, user, "bound", {"title": "another request"})
    other_path = await append(api, user, "thr_anything", "bound")

    assert_problem(other_body, 422)
    assert_problem(other_path, 422)
    assert await thread_count(api, user) == 0


async def test_the_erased_record_keeps_nothing_of_the_response(api: Api, user: str) -> None:
    thread_id = (await create(api, user, "scrubbed")).json()["id"]
    await append(api, user, thread_id, "scrubbed-append")

    await delete_for_good(api, user, thread_id)

    async with api.database.engine.connect() as conn:
        rows = (await conn.execute(select(idempotency_keys).where(idempotency_keys.c.user_id == user))).mappings()
        stored = [(r["status_code"], r["response_body"], r["response_headers"], r["thread_id"]) for r in rows]
    assert sorted(stored) == [(404, "", "{}", thread_id)] * 2


async def test_an_erased_key_is_free_again_after_its_ttl(api: Api, user: str) -> None:
    first = (await create(api, user, "expires")).json()
    await delete_for_good(api, user, first["id"])
    await age_key(api, user, "expires", TTL + 5)

    again = await create(api, user, "expires")

    assert again.status_code == 201 and again.json()["id"] != first["id"]
    assert await thread_count(api, user) == 1


async def test_keyed_appends_racing_the_delete_are_all_erased_or_never_stored(
    api: Api, user: str, create_thread: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the interleaving, afterwards no key of the thread replays: an append that committed before the
    delete had its key erased with it, one that came after found no thread and stored nothing. The delete
    lingers after its erasure, so appends arrive while it holds what it took (and would slip in between, were
    the erasure to come before the delete)."""
    await race_appends_against_the_delete(api, user, create_thread, monkeypatch)


@pytest.mark.postgres_only
class TestUnderStricterIsolation:
    """On REPEATABLE READ and SERIALIZABLE the delete's snapshot predates appends it waited for: it fails as a
    serialization conflict and runs again, and the outcome is the same."""

    @pytest.fixture(params=["REPEATABLE READ", "SERIALIZABLE"])
    def settings_overrides(self, request: pytest.FixtureRequest) -> dict[str, Any]:
        return {"idempotency_ttl_seconds": TTL, "isolation_level": request.param}

    async def test_keyed_appends_racing_the_delete_are_all_erased_or_never_stored(
        self, api: Api, user: str, create_thread: Factory, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await race_appends_against_the_delete(api, user, create_thread, monkeypatch)


async def race_appends_against_the_delete(
    api: Api, user: str, create_thread: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    erase = idempotency.forget_thread

    async def erase_then_linger(tx: Tx, user_id: str, thread_id: str) -> None:
        await erase(tx, user_id, thread_id)
        await asyncio.sleep(0.05)

    monkeypatch.setattr(idempotency, "forget_thread", erase_then_linger)
    thread = await create_thread(title="raced")
    keys = [f"race-{i}" for i in range(CONCURRENT)]
    appends = [append(api, user, thread["id"], key) for key in keys[: CONCURRENT // 2]]
    later = [append(api, user, thread["id"], key) for key in keys[CONCURRENT // 2 :]]
    answers = await asyncio.gather(*appends, delete_for_good(api, user, thread["id"]), *later)
    assert answers[CONCURRENT // 2].status_code == 204
    assert {r.status_code for r in answers} <= {201, 204, 404}, [r.text for r in answers]

    problem = await missing_thread_problem(api, user, thread["id"])
    for key in keys:
        assert_gone(await append(api, user, thread["id"], key), problem)
    assert await message_count(api, thread["id"]) == 0
