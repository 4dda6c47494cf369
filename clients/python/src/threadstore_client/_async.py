"""The asynchronous client: the same calls as the sync one (`_endpoints.py`, decided by `_core.Attempts`),
sent with `httpx.AsyncClient` and waited with `asyncio.sleep`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Callable, Coroutine, Iterable, Mapping
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


class AsyncClient:
    """The asyncio twin of `Client`: the same namespaces and methods, awaited."""

    def __init__(
        self,
        base_url: str,
        token: str | Callable[[], str],
        *,
        timeout: float | httpx.Timeout = 30.0,
        retry: RetryPolicy | None = None,
        events_read_timeout: float = 45.0,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self._http = http_client or httpx.AsyncClient(base_url=base_url, timeout=timeout)
        self._session = Session(token)
        self._policy = retry or RetryPolicy()
        self._events_read_timeout = events_read_timeout
        self.threads = AsyncThreads(self)
        self.messages = AsyncMessages(self)
        self.feedback = AsyncFeedback(self)
        self.search = AsyncSearch(self)
        self.events = AsyncEvents(self)

    @property
    def read_after(self) -> str | None:
        return self._session.read_after

    async def healthz(self) -> bool:
        return await self._run(E.healthz())

    async def readyz(self) -> bool:
        return await self._run(E.readyz())

    async def close(self) -> None:
        await self._http.aclose()

    aclose = close

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _send(self, request: Request) -> httpx.Response:
        with translated():
            return await self._http.request(
                request.method, request.path, params=request.params, headers=request.headers, content=request.content
            )

    @contextlib.asynccontextmanager
    async def _open(self, call: Call[None]) -> AsyncIterator[httpx.Response]:
        """A streamed 200 answer to `call` (its opening retried like any read), closed on exit."""
        attempts = Attempts(call, self._policy)
        while True:
            request = attempts.request(self._session)
            try:
                with translated():
                    built = self._http.build_request(
                        request.method, request.path, params=request.params, headers=request.headers
                    )
                    response = await self._http.send(built, stream=True)
            except APIConnectionError as error:
                await asyncio.sleep(attempts.after_error(error).seconds)
                continue
            if response.status_code == 200:
                break
            try:
                await response.aread()
            finally:
                await response.aclose()
            step = attempts.after_response(response)
            assert isinstance(step, Wait), "a streamed read answers 200 or an error"
            await asyncio.sleep(step.seconds)
        try:
            yield response
        finally:
            await response.aclose()

    async def _run(self, call: Call[T]) -> T:
        attempts = Attempts(call, self._policy)
        while True:
            try:
                response = await self._send(attempts.request(self._session))
            except APIConnectionError as error:
                await asyncio.sleep(attempts.after_error(error).seconds)
                continue
            self._session.saw(response)
            step = attempts.after_response(response)
            if isinstance(step, Done):
                return step.value
            if isinstance(step, Wait):
                await asyncio.sleep(step.seconds)
                continue
            current = await self._run(step.call)
            if step.landed(current):
                return current
            raise problem(response)


class _Namespace:
    def __init__(self, client: AsyncClient) -> None:
        self._client = client


def _op(builder: Callable[P, Call[T]]) -> Callable[Concatenate[_Namespace, P], Coroutine[Any, Any, T]]:
    async def method(self: _Namespace, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._client._run(builder(*args, **kwargs))

    method.__doc__ = builder.__doc__
    return method


def _pages(builder: Callable[P, Call[Page[T]]]) -> Callable[Concatenate[_Namespace, P], AsyncIterator[T]]:
    async def method(self: _Namespace, /, *args: P.args, **kwargs: P.kwargs) -> AsyncIterator[T]:
        while True:
            page = await self._client._run(builder(*args, **kwargs))
            for item in page.data:
                yield item
            if not page.has_more or page.next_cursor is None:
                return
            kwargs["cursor"] = page.next_cursor

    method.__doc__ = f"Every item, following the cursors page by page. {builder.__doc__ or ''}"
    return method


class AsyncThreads(_Namespace):
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


class AsyncMessages(_Namespace):
    append = _op(E.append_message)
    get = _op(E.get_message)
    delete = _op(E.delete_message)
    update = _op(E.update_message)
    append_delta = _op(E.append_delta)
    list_all = _pages(E.list_messages)

    async def read_all(
        self,
        thread_id: str,
        *,
        order: Literal["asc", "desc"] | None = None,
        leaf: str | None = None,
        siblings_of: str | None = None,
        view: Literal["all"] | None = None,
    ) -> AsyncIterator[Message]:
        """`Client.messages.read_all`, as an async iterator."""
        call = E.read_messages(thread_id, order=order, leaf=leaf, siblings_of=siblings_of, view=view)
        async with self._client._open(call) as response:
            with translated():
                async for line in response.aiter_lines():
                    if line:
                        yield Message.model_validate_json(line)

    async def stream_reply(
        self,
        thread_id: str,
        chunks: AsyncIterable[str] | Iterable[str],
        *,
        parent_id: str | NotGiven | None = NOT_GIVEN,
        model: str | None = None,
        flush_interval: float = 0.1,
        flush_chars: int = 500,
        finish_reason: str = "stop",
        usage: Usage | Mapping[str, int] | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> Message:
        """`Client.messages.stream_reply`, awaited; `chunks` may be an async or a plain iterable."""
        run = self._client._run
        started = await run(E.start_reply(thread_id, parent_id=parent_id, model=model, metadata=metadata))
        reply = Reply(thread_id, started.id)
        batcher = Batcher(flush_chars, flush_interval)
        try:
            async for chunk in _aiter(chunks):
                reply.queue(batcher.add(chunk))
                await self._flush(reply)
            reply.queue(batcher.rest())
            await self._flush(reply)
        except BaseException as error:
            reply.queue(batcher.rest())
            # Shielded: a cancelled task still leaves its reply closed rather than in_progress until the sweep.
            await asyncio.shield(self._abort(reply, abort_reason(error)))
            raise
        return await run(E.end_reply(reply, "completed", finish_reason, usage))

    async def _abort(self, reply: Reply, reason: str) -> None:
        with contextlib.suppress(ThreadstoreError):
            await self._flush(reply)
        with contextlib.suppress(ThreadstoreError):
            await self._client._run(E.end_reply(reply, "incomplete", reason, None))

    async def _flush(self, reply: Reply) -> None:
        while reply.pending:
            await self._client._run(E.append_delta(reply.thread_id, reply.message_id, reply.offset, reply.pending[0]))
            reply.sent()

    list = _op(E.list_messages)


async def _aiter(chunks: AsyncIterable[str] | Iterable[str]) -> AsyncIterator[str]:
    if isinstance(chunks, AsyncIterable):
        async for chunk in chunks:
            yield chunk
    else:
        for chunk in chunks:
            yield chunk


class AsyncFeedback(_Namespace):
    set = _op(E.set_feedback)
    clear = _op(E.clear_feedback)


class AsyncSearch(_Namespace):
    query = _op(E.search)
    list_all = _pages(E.search)


class AsyncEvents(_Namespace):
    session = _op(E.events_session)

    def __call__(self, *, thread_id: str | None = None, last_event_id: int | None = None) -> AsyncEventStream:
        """The caller's events (or one thread's) as an async iterator that reconnects with `Last-Event-ID` and
        never yields an event twice. `aclose()` it (or `async with`) when done."""
        resume = Resume(self._client._policy, thread_id=thread_id, last_event_id=last_event_id)
        return AsyncEventStream(self._client, resume)

    stream = __call__


class AsyncEventStream:
    def __init__(self, client: AsyncClient, resume: Resume) -> None:
        self._client = client
        self._resume = resume
        self._closed = False
        self._response: httpx.Response | None = None
        self._events = self._follow()

    @property
    def last_event_id(self) -> int | None:
        return self._resume.last_id

    def __aiter__(self) -> AsyncEventStream:
        return self

    async def __anext__(self) -> Event:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        """Ends the iterator, also while another task waits on it (its open response is closed under it)."""
        self._closed = True
        try:
            await self._events.aclose()
        except RuntimeError:  # "already running" in another task
            if self._response is not None:
                await self._response.aclose()

    async def __aenter__(self) -> AsyncEventStream:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _follow(self) -> AsyncGenerator[Event]:
        resume, client = self._resume, self._client
        timeout = httpx.Timeout(client._http.timeout.connect, read=client._events_read_timeout)
        while not self._closed and not resume.finished:
            request = resume.request(client._session)
            wait: Wait | None = None
            try:
                with translated():
                    async with client._http.stream(
                        "GET", request.path, params=request.params, headers=request.headers, timeout=timeout
                    ) as response:
                        self._response = response
                        if response.status_code != 200:
                            await response.aread()
                        wait = resume.opened(response)
                        if wait is None:
                            reader = FrameReader()
                            async for line in response.aiter_lines():
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
                await asyncio.sleep(wait.seconds)
