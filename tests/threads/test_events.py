"""The events thread writes record, read straight from the outbox (tests/events reads them through the stream):
one per change, carrying the object as the API returned it, and none for a request that changed nothing or failed."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Api, Factory
from tests.threads.helpers import append, assert_problem, assert_thread_response, recorded_events

URL = "/api/threads"


async def test_create_with_initial_messages_is_one_thread_created_event(api: Api, user: str) -> None:
    body = {"title": "t", "messages": [{"content": "one"}, {"content": "two"}]}
    response = await api.request("POST", URL, user=user, json=body)
    assert response.status_code == 201

    assert await recorded_events(api, user) == [("thread.created", response.json())]


async def test_patch_records_thread_updated_with_the_returned_thread(
    api: Api, user: str, create_thread: Factory
) -> None:
    created = await create_thread()

    response = await api.request("PATCH", f"{URL}/{created['id']}", user=user, json={"title": "new"})

    assert await recorded_events(api, user) == [
        ("thread.created", created),
        ("thread.updated", assert_thread_response(response)),
    ]


async def test_patch_event_is_the_stored_thread_even_where_the_database_normalizes_json(
    api: Api, user: str, create_thread: Factory
) -> None:
    # On PostgreSQL the event is written by the UPDATE's own statement from a prediction of the row; JSONB
    # turns 1e18 into the integer 1000000000000000000, and the event must still carry what the API returns.
    created = await create_thread(metadata={"keep": {"deep": 1, "gone": 2}, "drop": "x"})
    patch = {"metadata": {"big": 1e18, "keep": {"gone": None}, "drop": None}}

    response = await api.request("PATCH", f"{URL}/{created['id']}", user=user, json=patch)
    thread = assert_thread_response(response)
    fetched = (await api.request("GET", f"{URL}/{created['id']}", user=user)).json()

    assert thread["metadata"] == {"big": 1e18, "keep": {"deep": 1}}
    events = await recorded_events(api, user)
    assert [event_type for event_type, _ in events] == ["thread.created", "thread.updated"]
    # Compared as canonical text: Python holds 1e18 == 10**18, JSON clients may not.
    assert _canonical(events[1][1]) == _canonical(thread) == _canonical(fetched)


def _canonical(data: dict[str, Any]) -> str:
    return json.dumps(data, sort_keys=True)


async def test_a_patch_that_changes_nothing_records_no_event(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(title="same", metadata={"a": "1"})

    response = await api.request(
        "PATCH", f"{URL}/{created['id']}", user=user, json={"title": "same", "metadata": {"a": "1"}}
    )

    assert response.status_code == 200
    assert await recorded_events(api, user) == [("thread.created", created)]


async def test_failed_requests_record_no_event(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()
    thread_url = f"{URL}/{created['id']}"

    assert_problem(await api.request("POST", URL, user=user, json={"title": ""}), 422)
    assert_problem(
        await api.request("PATCH", thread_url, user=user, json={"title": "x"}, headers={"If-Match": '"9"'}), 412
    )
    assert_problem(await api.request("PATCH", thread_url, user=user, json={"metadata": None}), 422)
    assert_problem(await api.request("POST", f"{thread_url}/auto-rename", user=user), 422)

    assert await recorded_events(api, user) == [("thread.created", created)]


async def test_archive_records_one_update_and_repeating_it_none(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()

    first = await api.request("DELETE", f"{URL}/{created['id']}", user=user)
    await api.request("DELETE", f"{URL}/{created['id']}", user=user)

    assert await recorded_events(api, user) == [
        ("thread.created", created),
        ("thread.updated", assert_thread_response(first)),
    ]


async def test_append_to_an_archived_thread_records_no_event(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()
    archived = assert_thread_response(await api.request("DELETE", f"{URL}/{created['id']}", user=user))

    assert_problem(await append(api, user, created["id"]), 409)

    assert await recorded_events(api, user) == [("thread.created", created), ("thread.updated", archived)]


async def test_permanent_delete_records_thread_deleted_with_the_id(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()

    response = await api.request("DELETE", f"{URL}/{created['id']}", user=user, params={"permanent": "true"})

    assert response.status_code == 204
    assert (await recorded_events(api, user))[-1] == ("thread.deleted", {"id": created["id"]})


async def test_auto_rename_records_thread_updated(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(messages=[{"content": "How do I reverse a list in Python?"}])

    response = await api.request("POST", f"{URL}/{created['id']}/auto-rename", user=user)

    assert await recorded_events(api, user) == [
        ("thread.created", created),
        ("thread.updated", assert_thread_response(response)),
    ]


async def test_events_are_recorded_for_the_owner_only(
    api: Api, user: str, other_user: str, create_thread: Factory
) -> None:
    created = await create_thread()
    assert_problem(await api.request("PATCH", f"{URL}/{created['id']}", user=other_user, json={"title": "x"}), 404)

    assert await recorded_events(api, other_user) == []
