"""An append without Idempotency-Key is one statement on PostgreSQL (messages/repository.py
`append_in_place`): the seq, the message and its event together, in autocommit."""

from __future__ import annotations

import pytest

from tests.conftest import Api, Factory
from tests.threads.helpers import recorded_events, statements

pytestmark = pytest.mark.postgres_only


async def test_an_append_is_one_statement_that_also_records_its_event(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread(messages=[{"content": "first"}])
    body = {"role": "assistant", "content": 'é "quoted"\n', "metadata": {"n": [1, {"x": None}], "big": 2**64 - 1}}

    with statements(api) as seen:
        response = await api.request("POST", f"/api/threads/{thread['id']}/messages", user=user, json=body)

    assert response.status_code == 201, response.text
    message = response.json()
    assert len(seen) == 1, seen
    assert (message["seq"], message["content"], message["metadata"]) == (2, body["content"], body["metadata"])
    assert await recorded_events(api, user) == [("thread.created", thread), ("message.created", message)]


async def test_what_the_statement_does_not_apply_is_decided_by_a_read(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread()
    await api.request("DELETE", f"/api/threads/{thread['id']}", user=user)

    with statements(api) as seen:
        archived = await api.request("POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": "x"})
    missing = await api.request("POST", "/api/threads/thr_missing/messages", user=user, json={"content": "x"})

    assert (archived.status_code, missing.status_code) == (409, 404)
    assert [statement.split()[0] for statement in seen] == ["WITH", "SELECT"]
