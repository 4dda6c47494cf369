"""The synchronous client: it sends what `_core.Attempts` asks for and sleeps with `time.sleep`. Every endpoint
is a `Call` builder of `_endpoints.py`; `_op` makes it a method with the builder's own signature."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, Concatenate, Literal, ParamSpec, TypeVar

import httpx

from threadstore_client import _endpoints as E
from threadstore_client._core import NOT_GIVEN, Attempts, Call, Done, NotGiven, Request, Session, Wait, problem
from threadstore_client._events import FrameReader, Resume
from threadstore_client._retry import RetryPolicy
from threadstore_client._streaming import Batcher, Reply, abort_reason
from threadstore_client._transport import translated
from threadstore_client.errors import APIConnectionError, ThreadstoreError
from threadstore_client.models import Event, Message, Page, Usage

P = ParamSpec("P")
T = TypeVar("T")


class Client:
    """A client of one threadstore server, for one user (`token`: the bearer JWT, or a function that returns a
    current one, asked before each request). Safe to share between threads. Close it (or use it as a context
    manager) to release its connections."""

    def __init__(
        self,
        base_url: str,
        token: str | Callable[[], str],
        *,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        events_read_timeout: float = 45.0,
        http_client: httpx.Client | None = None,
    ) -> None:
        self._http = http_client or httpx.Client(base_url=base_url, timeout=timeout)
        self._session = Session(token)
        self._policy = retry or RetryPolicy()
        self._events_read_timeout = events_read_timeout
        self.threads = Threads(self)
        self.messages = Messages(self)
        self.feedback = Feedback(self)
        self.search = Search(self)
        self.events = Events(self)

    @property
    def read_after(self) -> str | None:
        """The newest `X-Read-After` a write answered with; sent on every read."""
        return self._session.read_after

    def healthz(self) -> bool:
        return self._run(E.healthz())

    def readyz(self) -> bool:
        return self._run(E.readyz())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _send(self, request: Request) -> httpx.Response:
        with translated():
            return self._http.request(
                request.method, request.path, params=request.params, headers=request.headers, content=request.content
            )

    @contextlib.contextmanager
    def _open(self, call: Call[None]) -> Iterator[httpx.Response]:
        """A streamed 200 answer to `call` (its opening retried like any read), closed on exit."""
        attempts = Attempts(call, self._policy)
        while True:
            request = attempts.request(self._session)
            try:
                with translated():
                    built = self._http.build_request(
                        request.method, request.path, params=request.params, headers=request.headers
                    )
                    response = self._http.send(built, stream=True)
            except APIConnectionError as error:
                time.sleep(attempts.after_error(error).seconds)
                continue
            if response.status_code == 200:
                break
            with contextlib.closing(response):
                response.read()
            step = attempts.after_response(response)
            assert isinstance(step, Wait), "a streamed read answers 200 or an error"
            time.sleep(step.seconds)
        with contextlib.closing(response):
            yield response

    def _run(self, call: Call[T]) -> T:
        attempts = Attempts(call, self._policy)
        while True:
            try:
                response = self._send(attempts.request(self._session))
            except APIConnectionError as error:
                time.sleep(attempts.after_error(error).seconds)
                continue
            self._session.saw(response)
            step = attempts.after_response(response)
            if isinstance(step, Done):
                return step.value
            if isinstance(step, Wait):
                time.sleep(step.seconds)
                continue
            current = self._run(step.call)
            if step.landed(current):
                return current
            raise problem(response)


class _Namespace:
    def __init__(self, client: Client) -> None:
        self._client = client


def _op(builder: Callable[P, Call[T]]) -> Callable[Concatenate[_Namespace, P], T]:
    def method(self: _Namespace, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._client._run(builder(*args, **kwargs))

    method.__doc__ = builder.__doc__
    return method


def _pages(builder: Callable[P, Call[Page[T]]]) -> Callable[Concatenate[_Namespace, P], Iterator[T]]:
    def method(self: _Namespace, /, *args: P.args, **kwargs: P.kwargs) -> Iterator[T]:
        while True:
            page = self._client._run(builder(*args, **kwargs))
            yield from page.data
            if not page.has_more or page.next_cursor is None:
                return
            kwargs["cursor"] = page.next_cursor

    method.__doc__ = f"Every item, following the cursors page by page. {builder.__doc__ or ''}"
    return method


class Threads(_Namespace):
    create = _op(E.create_thread)
    get = _op(E.get_thread)
    get_if_changed = _op(E.get_thread_if_changed)
    update = _op(E.update_thread)
    switch_branch = _op(E.switch_branch)
    archive = _op(E.archive_thread)
    restore = _op(E.restore_thread)
    delete = _op(E.delete_thread)
    auto_rename = _op(E.auto_rename)
    fork = _op(E.fork_thread)
    list_all = _pages(E.list_threads)
    list = _op(E.list_threads)


class Messages(_Namespace):
    append = _op(E.append_message)
    get = _op(E.get_message)
    delete = _op(E.delete_message)
    update = _op(E.update_message)
    append_delta = _op(E.append_delta)
    list_all = _pages(E.list_messages)

    def read_all(
        self,
        thread_id: str,
        *,
        order: Literal["asc", "desc"] | None = None,
        leaf: str | None = None,
        siblings_of: str | None = None,
        view: Literal["all"] | None = None,
    ) -> Iterator[Message]:
        """Every message of the selection in one streamed answer (NDJSON), parsed as it arrives: a whole
        conversation in constant memory. A transfer cut off by the server raises APIConnectionError."""
        call = E.read_messages(thread_id, order=order, leaf=leaf, siblings_of=siblings_of, view=view)
        with self._client._open(call) as response, translated():
            for line in response.iter_lines():
                if line:
                    yield Message.model_validate_json(line)

    def stream_reply(
        self,
        thread_id: str,
        chunks: Iterable[str],
        *,
        parent_id: str | NotGiven | None = NOT_GIVEN,
        model: str | None = None,
        flush_interval: float = 0.1,
        flush_chars: int = 500,
        finish_reason: str = "stop",
        usage: Usage | Mapping[str, int] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Message:
        """Stores a reply while `chunks` produce it: creates it `in_progress`, sends the text as deltas (every
        `flush_chars` characters or `flush_interval` seconds), and closes it `completed` with `finish_reason`
        and `usage`. If `chunks` raises, the text so far is kept, the reply is closed `incomplete`, and the
        error is raised again. Returns the final message."""
        run = self._client._run
        started = run(E.start_reply(thread_id, parent_id=parent_id, model=model, metadata=metadata))
        reply = Reply(thread_id, started.id)
        batcher = Batcher(flush_chars, flush_interval)
        try:
            for chunk in chunks:
                reply.queue(batcher.add(chunk))
                self._flush(reply)
            reply.queue(batcher.rest())
            self._flush(reply)
        except BaseException as error:
            reply.queue(batcher.rest())
            with contextlib.suppress(ThreadstoreError):
                self._flush(reply)
            with contextlib.suppress(ThreadstoreError):
                run(E.end_reply(reply, "incomplete", abort_reason(error), None))
            raise
        return run(E.end_reply(reply, "completed", finish_reason, usage))

    def _flush(self, reply: Reply) -> None:
        while reply.pending:
            self._client._run(E.append_delta(reply.thread_id, reply.message_id, reply.offset, reply.pending[0]))
            reply.sent()

    list = _op(E.list_messages)


class Feedback(_Namespace):
    set = _op(E.set_feedback)
    clear = _op(E.clear_feedback)


class Search(_Namespace):
    query = _op(E.search)
    list_all = _pages(E.search)


class Events(_Namespace):
    session = _op(E.events_session)

    def __call__(self, *, thread_id: str | None = None, last_event_id: int | None = None) -> EventStream:
        """The caller's events (or one thread's), as they commit, for as long as the iterator is read: it
        reconnects after a drop with `Last-Event-ID` and never yields an event twice. Close it when done."""
        resume = Resume(self._client._policy, thread_id=thread_id, last_event_id=last_event_id)
        return EventStream(self._client, resume)

    stream = __call__


class EventStream:
    """An iterator of typed events that survives drops and server restarts (see `Client.events`)."""

    def __init__(self, client: Client, resume: Resume) -> None:
        self._client = client
        self._resume = resume
        self._response: httpx.Response | None = None
        self._closed = False
        self._events = self._follow()

    @property
    def last_event_id(self) -> int | None:
        return self._resume.last_id

    def __iter__(self) -> EventStream:
        return self

    def __next__(self) -> Event:
        return next(self._events)

    def close(self) -> None:
        """Ends the iterator (from another thread too: the open response is closed under it)."""
        self._closed = True
        if self._response is not None:
            with contextlib.suppress(Exception):
                self._response.close()
        with contextlib.suppress(ValueError):  # "generator already executing": the other thread ends it
            self._events.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def _follow(self) -> Generator[Event]:
        resume, client = self._resume, self._client
        timeout = httpx.Timeout(client._http.timeout.connect, read=client._events_read_timeout)
        while not self._closed and not resume.finished:
            request = resume.request(client._session)
            wait: Wait | None = None
            try:
                with (
                    translated(),
                    client._http.stream(
                        "GET", request.path, params=request.params, headers=request.headers, timeout=timeout
                    ) as response,
                ):
                    self._response = response
                    if response.status_code != 200:
                        response.read()
                    wait = resume.opened(response)
                    if wait is None:
                        reader = FrameReader()
                        for line in response.iter_lines():
                            frame = reader.feed(line)
                            event = resume.accept(frame) if frame is not None else None
                            if event is not None:
                                yield event
                                if resume.finished:
                                    return
                        wait = resume.dropped(None)
            except APIConnectionError as error:
                if self._closed:
                    return
                wait = resume.dropped(error)
            finally:
                self._response = None
            if not self._closed:
                time.sleep(wait.seconds)
