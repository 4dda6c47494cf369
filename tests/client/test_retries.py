"""The retry decisions, against a real server with a lossy link in between: the request reaches the server
and is answered, but the answer is lost on the way back (as when a server dies right after its commit). What
the client does on its retry decides whether a write happens twice."""

from __future__ import annotations

import httpx
import pytest

from tests.harness.processes import ServeProcess
from threadstore_client import APIConnectionError, Client, PreconditionFailed, RetryPolicy

from .conftest import token_of


class LosingTransport(httpx.HTTPTransport):
    """Sends each request; loses the answer of the next `lose` requests whose method is `method`."""

    def __init__(self, method: str, lose: int = 1) -> None:
        super().__init__()
        self.method = method
        self.lose = lose
        self.sent = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == self.method:
            self.sent += 1
            if self.lose > 0:
                self.lose -= 1
                response.read()
                response.close()
                raise httpx.ReadError("the answer was lost", request=request)
        return response


def _lossy_client(server: ServeProcess, user: str, transport: LosingTransport) -> Client:
    http = httpx.Client(base_url=server.base_url, transport=transport, timeout=30.0)
    return Client(server.base_url, token_of(user), http_client=http, retry=RetryPolicy(initial=0.01))


def test_a_create_and_an_append_whose_answer_was_lost_are_stored_once(server: ServeProcess, user: str) -> None:
    transport = LosingTransport("POST")
    with _lossy_client(server, user, transport) as client:
        thread = client.threads.create(title="once")
        transport.lose = 1
        message = client.messages.append(thread.id, "only once")
        listed = list(client.threads.list_all())
        stored = list(client.messages.list_all(thread.id))
    assert transport.sent == 4  # each sent twice, the same key each time
    assert [t.id for t in listed] == [thread.id]
    assert [m.id for m in stored] == [message.id]


def test_a_thread_patch_with_if_match_whose_answer_was_lost_returns_the_thread(server: ServeProcess, user: str) -> None:
    transport = LosingTransport("PATCH")
    with _lossy_client(server, user, transport) as client:
        thread = client.threads.create(title="before")
        patched = client.threads.update(thread.id, title="after", metadata={"k": "v"}, if_match=thread.version)
    assert transport.sent == 2  # the retry got 412, and the re-read showed the first try had landed
    assert (patched.title, patched.metadata, patched.version) == ("after", {"k": "v"}, thread.version + 1)


def test_a_412_on_a_retry_after_someone_else_changed_the_thread_is_raised(server: ServeProcess, user: str) -> None:
    with Client(server.base_url, token_of(user)) as other:
        thread = other.threads.create(title="before")
        other.threads.update(thread.id, title="theirs")
        with pytest.raises(PreconditionFailed):
            other.threads.update(thread.id, title="mine", if_match=thread.version)


def test_a_thread_patch_without_if_match_is_not_retried_once_sent(server: ServeProcess, user: str) -> None:
    transport = LosingTransport("PATCH")
    with _lossy_client(server, user, transport) as client:
        thread = client.threads.create()
        with pytest.raises(APIConnectionError) as lost:
            client.threads.update(thread.id, title="maybe")
    assert lost.value.sent and transport.sent == 1


def test_deletes_whose_answer_was_lost_count_as_done(server: ServeProcess, user: str) -> None:
    transport = LosingTransport("DELETE", lose=0)
    with _lossy_client(server, user, transport) as client:
        thread = client.threads.create(messages=[{"content": "a"}, {"content": "b"}])
        _, second = list(client.messages.list_all(thread.id))
        transport.lose = 2
        assert client.messages.delete(thread.id, second.id) is None  # the retry's 404: the first did it
        assert client.threads.delete(thread.id) is None
    assert transport.sent == 4


def test_a_closing_patch_and_a_delta_whose_answers_were_lost_apply_once(server: ServeProcess, user: str) -> None:
    transport = LosingTransport("POST", lose=0)
    with _lossy_client(server, user, transport) as client:
        thread = client.threads.create()
        reply = client.messages.append(thread.id, "", role="assistant", status="in_progress")
        transport.lose = 1
        assert client.messages.append_delta(thread.id, reply.id, 0, "Hello").length == 5
        transport.method, transport.lose = "PATCH", 1
        closed = client.messages.update(thread.id, reply.id, status="completed", finish_reason="stop")
    assert (closed.content, closed.status) == ("Hello", "completed")


def test_a_callers_own_idempotency_key_replays_the_first_answer(server: ServeProcess, user: str) -> None:
    with Client(server.base_url, token_of(user)) as client:
        thread = client.threads.create(idempotency_key="create-1")
        assert client.threads.create(idempotency_key="create-1") == thread
        first = client.messages.append(thread.id, "once", idempotency_key="append-1")
        assert client.messages.append(thread.id, "once", idempotency_key="append-1") == first
        fork = client.threads.fork(thread.id, idempotency_key="fork-1")
        assert client.threads.fork(thread.id, idempotency_key="fork-1") == fork
        assert [m.id for m in client.messages.list_all(thread.id)] == [first.id]
