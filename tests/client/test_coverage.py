"""Every operation the server documents (its /openapi.json) has a call in the client, so an endpoint added to
the server without one fails here."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.harness.processes import ServeProcess
from threadstore_client import _endpoints as E
from threadstore_client._core import Call

T, M = "THREAD", "MESSAGE"
# Served for people and tools, not part of the API a client calls.
NOT_CLIENT_CALLS = {"/metrics", "/docs", "/redoc", "/openapi.json"}


def _client_calls() -> set[tuple[str, str]]:
    calls: list[Call[Any]] = [
        E.create_thread(),
        E.list_threads(),
        E.get_thread(T),
        E.update_thread(T),
        E.archive_thread(T),
        E.delete_thread(T),
        E.auto_rename(T),
        E.fork_thread(T),
        E.append_message(T, "x"),
        E.list_messages(T),
        E.get_message(T, M),
        E.delete_message(T, M),
        E.update_message(T, M),
        E.append_delta(T, M, 0, "x"),
        E.set_feedback(T, M, "up"),
        E.clear_feedback(T, M),
        E.search("x"),
        E.events_session(),
        E.healthz(),
        E.readyz(),
    ]
    found = {(call.method, call.path.replace(T, "{}").replace(M, "{}")) for call in calls}
    found.add(("GET", "/api/events"))  # the event stream (Client.events), read by _events.Resume
    return found


@pytest.mark.sqlite_only
async def test_every_documented_operation_has_a_client_call(server: ServeProcess) -> None:
    document = (await server.api.client.get("/openapi.json")).json()
    documented = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, operations in document["paths"].items()
        if path not in NOT_CLIENT_CALLS and not path.startswith(("/app", "/docs"))
        for method in operations
        if method in {"get", "post", "put", "patch", "delete"}
    }
    assert len(documented) >= 19 and documented - _client_calls() == set()
