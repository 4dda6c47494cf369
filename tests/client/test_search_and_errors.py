"""Search and its iterator, health probes, and the typed errors: each carries the problem details the server
sent (status, type, title, detail, errors, reason, request_id)."""

from __future__ import annotations

import pytest

from tests.harness.processes import ServeProcess
from threadstore_client import (
    APIConnectionError,
    AuthenticationError,
    Client,
    ConflictError,
    NotFoundError,
    RetryPolicy,
    ValidationError,
)


def test_search_finds_titles_and_messages_with_marked_snippets(client: Client) -> None:
    titled = client.threads.create(title="Lisbon trams")
    said = client.threads.create(messages=[{"content": "The trams of Lisbon are yellow"}])
    client.threads.create(title="Porto")
    results = list(client.search.list_all("lisbon", limit=1))
    assert {r.thread.id for r in results} == {titled.id, said.id}
    by_thread = {r.thread.id: r for r in results}
    assert by_thread[titled.id].matches[0].message_id is None
    assert "<mark>Lisbon</mark>" in by_thread[said.id].matches[0].snippet
    assert client.search.query("lisbon", sort="recent").data[0].thread.id == said.id


def test_the_health_probes_answer(client: Client) -> None:
    assert client.healthz() and client.readyz()


def test_a_not_found_carries_the_problem_and_the_request_id(client: Client) -> None:
    with pytest.raises(NotFoundError) as missing:
        client.threads.get("thr_nothing_here")
    error = missing.value
    assert (error.status, error.type) == (404, "urn:threadstore:problem:not-found")
    assert error.title and error.request_id and error.request_id == error.headers["x-request-id"]
    assert error.request_id in str(error)


def test_a_validation_error_lists_each_problem(client: Client) -> None:
    thread = client.threads.create()
    with pytest.raises(ValidationError) as invalid:
        client.messages.append(thread.id, "x", parent_id="msg_not_in_this_thread")
    assert invalid.value.status == 422
    assert [e["loc"] for e in invalid.value.errors] == [["body", "parent_id"]]


def test_a_conflict_says_its_reason(client: Client) -> None:
    thread = client.threads.create()
    client.threads.archive(thread.id)
    with pytest.raises(ConflictError) as archived:
        client.messages.append(thread.id, "too late")
    assert archived.value.reason == "archived" and archived.value.status == 409


def test_a_bad_token_is_an_authentication_error(server: ServeProcess) -> None:
    with Client(server.base_url, "not-a-jwt") as client, pytest.raises(AuthenticationError) as refused:
        client.threads.list()
    assert refused.value.status == 401 and refused.value.request_id


def test_no_server_is_a_connection_error_once_the_retries_are_spent() -> None:
    with (
        Client("http://127.0.0.1:9", "t", retry=RetryPolicy(attempts=2, initial=0.01)) as client,
        pytest.raises(APIConnectionError) as failed,
    ):
        client.threads.list()
    assert failed.value.sent is False
