"""GET /api/threads/{id}/messages as NDJSON (API.md, "Whole-conversation reads"): chosen by Accept, every
message of the selection in one streamed answer, read in pages that hold nothing while the client reads, cut
off without its last chunk when it fails after it started."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any, Literal

import asyncpg
import httpx
import pytest
from sqlalchemy import event
from starlette.types import ASGIApp, Message

from tests.conftest import Api, Factory, idle_in_transaction, new_user
from tests.harness.app import BACKGROUND_TASKS, running_api
from tests.harness.databases import Backend, fresh_database, make_settings
from tests.http.problems import assert_problem
from tests.pg_server import PgServer
from threadstore.messages import router as router_module
from threadstore.messages import service

NDJSON = "application/x-ndjson"


def url(thread_id: str) -> str:
    return f"/api/threads/{thread_id}/messages"


async def stream(api: Api, user: str, thread_id: str, **params: Any) -> list[dict[str, Any]]:
    """The messages of an NDJSON answer, checking its framing: one JSON object per line, each line ended."""
    response = await api.request("GET", url(thread_id), user=user, params=params, headers={"Accept": NDJSON})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == NDJSON
    assert response.headers["vary"] == "Accept"
    return lines_of(response.content)


def lines_of(body: bytes) -> list[dict[str, Any]]:
    assert body == b"" or body.endswith(b"\n"), body[-80:]
    return [json.loads(line) for line in body.split(b"\n")[:-1]]


async def json_pages(api: Api, user: str, thread_id: str, *, limit: int = 3, **params: Any) -> list[dict[str, Any]]:
    """Every message of the selection, walking the JSON list's pages."""
    messages: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(1000):
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        response = await api.request("GET", url(thread_id), user=user, params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        messages += page["data"]
        cursor = page["next_cursor"]
        if cursor is None:
            return messages
    raise AssertionError("pagination does not end")


async def append(api: Api, user: str, thread_id: str, content: str, **body: Any) -> dict[str, Any]:
    response = await api.request("POST", url(thread_id), user=user, json={"content": content, **body})
    assert response.status_code == 201, response.text
    message: dict[str, Any] = response.json()
    return message


async def chain(create_thread: Factory, count: int) -> dict[str, Any]:
    roles = ["user", "assistant"]
    return await create_thread(messages=[{"content": f"m{i}", "role": roles[(i - 1) % 2]} for i in range(1, count + 1)])


async def branched(api: Api, user: str, create_thread: Factory) -> tuple[str, dict[str, str]]:
    """A thread whose tree has three branches; the active path is the last one made. Names → message ids:

    a1 - a2 - a3 - a4 - a5 - a6
            \\ b3 - b4 - b5
            \\ c3 - c4 - c5 - c6 - c7   (current)
    """
    thread = await chain(create_thread, 6)
    ids: dict[str, str] = {}
    listed = await json_pages(api, user, thread["id"], view="all")
    for i, message in enumerate(listed, 1):
        ids[f"a{i}"] = message["id"]
    for name, last in (("b", 5), ("c", 7)):
        parent = ids["a2"]
        for depth in range(3, last + 1):
            parent = ids[f"{name}{depth}"] = (
                await append(api, user, thread["id"], f"{name}{depth}", parent_id=parent)
            )["id"]
    return thread["id"], ids


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    """Internal pages of 2 messages, so a short conversation crosses many of them."""
    monkeypatch.setattr(service, "WHOLE_PAGE_SIZE", 2)
    monkeypatch.setattr(service, "WHOLE_FIRST_PAGE_SIZE", 2)
    return 2


# --- content negotiation ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "chosen"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("application/*", "application/json"),  # no preference between the two: the default
        ("application/x-ndjson, application/json", "application/json"),  # a tie, whatever the order
        ("text/html", "application/json"),  # accepts neither: the default, never 406
        ("application/x-ndjson;q=0", "application/json"),
        ("application/x-ndjson;q=1.5", "application/json"),  # not a quality value: the range is ignored
        ("application/x-ndjson;q=oops, application/json;q=0.1", "application/json"),
        ("not a media type", "application/json"),
        ("application/x-ndjson", NDJSON),
        ("APPLICATION/X-NDJSON", NDJSON),
        ("application/x-ndjson; charset=utf-8", NDJSON),
        ("application/json;q=0.9, application/x-ndjson", NDJSON),
        ("application/json;q=0.5, application/x-ndjson;q=0.6", NDJSON),
        ("*/*;q=0.1, application/x-ndjson;q=0.2", NDJSON),
        ("application/x-ndjson;q=0.8, */*;q=0.9", "application/json"),  # */* gives JSON 0.9
        ("application/json;q=0, */*", NDJSON),  # JSON refused: anything else is preferred
        ("application/x-ndjson;q=0.500, application/json;q=0.499", NDJSON),
    ],
)
async def test_accept_chooses_the_representation(
    api: Api, user: str, create_thread: Factory, accept: str | None, chosen: str
) -> None:
    thread = await chain(create_thread, 3)
    headers = {"Accept": accept} if accept is not None else {}
    response = await api.request("GET", url(thread["id"]), user=user, headers=headers, params={"limit": 2})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == chosen
    assert response.headers["vary"] == "Accept"
    if chosen == NDJSON:
        assert [m["content"] for m in lines_of(response.content)] == ["m1", "m2", "m3"]
    else:
        page = response.json()
        assert [m["content"] for m in page["data"]] == ["m1", "m2"] and page["has_more"] is True


async def test_accept_given_in_two_header_lines_counts_both(api: Api, user: str, create_thread: Factory) -> None:
    thread = await chain(create_thread, 2)
    headers = [("Accept", "application/json;q=0.5"), ("Accept", "application/x-ndjson")]
    response = await api.client.get(url(thread["id"]), headers=[*api.auth(user).items(), *headers])
    assert response.headers["content-type"] == NDJSON


# --- what the stream holds --------------------------------------------------------------------------------------


async def test_lines_are_the_objects_of_the_json_list(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread(
        messages=[
            {"content": "line\nbreak and \u2028 unicode é ✓", "metadata": {"k": [1, {"x": None}]}},
            {"content": '{"json": "looking"}\n', "role": "assistant"},
        ]
    )
    listed = (await api.request("GET", url(thread["id"]), user=user)).json()["data"]
    assert await stream(api, user, thread["id"]) == listed


async def test_an_empty_thread_is_an_empty_body(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    assert await stream(api, user, thread["id"]) == []


@pytest.mark.parametrize("order", ["asc", "desc"])
@pytest.mark.parametrize("selector", ["active", "leaf", "siblings_of", "all"])
async def test_every_selector_and_order_equals_the_json_pages(
    api: Api, user: str, create_thread: Factory, small_pages: int, selector: str, order: str
) -> None:
    thread_id, ids = await branched(api, user, create_thread)
    params: dict[str, Any] = {
        "active": {},
        "leaf": {"leaf": ids["b4"]},
        "siblings_of": {"siblings_of": ids["b3"]},
        "all": {"view": "all"},
    }[selector] | {"order": order}

    streamed = await stream(api, user, thread_id, **params)

    assert streamed == await json_pages(api, user, thread_id, **params)
    expected = {
        "active": ["m1", "m2", "c3", "c4", "c5", "c6", "c7"],
        "leaf": ["m1", "m2", "b3", "b4"],
        "siblings_of": ["m3", "b3", "c3"],
        "all": ["m1", "m2", "m3", "m4", "m5", "m6", "b3", "b4", "b5", "c3", "c4", "c5", "c6", "c7"],
    }[selector]
    assert [m["content"] for m in streamed] == (expected if order == "asc" else expected[::-1])


async def test_a_path_of_many_internal_pages_equals_the_json_pages(
    api: Api, user: str, create_thread: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "WHOLE_PAGE_SIZE", 7)
    monkeypatch.setattr(service, "WHOLE_FIRST_PAGE_SIZE", 3)
    thread = await chain(create_thread, 40)  # 5 full pages and a partial one
    for i in range(41, 50):
        await append(api, user, thread["id"], f"m{i}")
    for order in ("asc", "desc"):
        streamed = await stream(api, user, thread["id"], order=order)
        assert len(streamed) == 49
        assert streamed == await json_pages(api, user, thread["id"], limit=10, order=order)


async def test_a_path_of_exactly_whole_pages_ends(
    api: Api, user: str, create_thread: Factory, small_pages: int
) -> None:
    thread = await chain(create_thread, 6)
    assert [m["seq"] for m in await stream(api, user, thread["id"])] == [1, 2, 3, 4, 5, 6]
    assert [m["seq"] for m in await stream(api, user, thread["id"], view="all", order="desc")] == [6, 5, 4, 3, 2, 1]


async def test_limit_and_cursor_are_ignored(api: Api, user: str, create_thread: Factory, small_pages: int) -> None:
    thread = await chain(create_thread, 5)
    first = (await api.request("GET", url(thread["id"]), user=user, params={"limit": 2})).json()
    streamed = await stream(api, user, thread["id"], limit=1, cursor=first["next_cursor"])
    assert [m["seq"] for m in streamed] == [1, 2, 3, 4, 5]
    assert [m["seq"] for m in await stream(api, user, thread["id"], cursor="not-a-cursor")] == [1, 2, 3, 4, 5]
    # Ignored, not unchecked: a limit out of its bounds is the parameter's usual 422.
    response = await api.request("GET", url(thread["id"]), user=user, params={"limit": 0}, headers={"Accept": NDJSON})
    assert_problem(response, 422)


# --- answers known before the stream starts ---------------------------------------------------------------------


async def test_unknown_and_foreign_threads_are_404_problems(api: Api, user: str, create_thread: Factory) -> None:
    thread = await chain(create_thread, 2)
    for thread_id, caller in (("thr_" + "0" * 22, user), (thread["id"], new_user())):
        response = await api.request("GET", url(thread_id), user=caller, headers={"Accept": NDJSON})
        assert_problem(response, 404)


@pytest.mark.parametrize("selector", ["leaf", "siblings_of"])
async def test_a_selector_naming_no_message_of_the_thread_is_404(
    api: Api, user: str, create_thread: Factory, selector: str
) -> None:
    thread = await chain(create_thread, 2)
    other = await chain(create_thread, 1)
    foreign = (await api.request("GET", url(other["id"]), user=user)).json()["data"][0]["id"]
    for message_id in ("msg_unknown", foreign):
        response = await api.request(
            "GET", url(thread["id"]), user=user, params={selector: message_id}, headers={"Accept": NDJSON}
        )
        assert_problem(response, 404)


async def test_two_selectors_are_422(api: Api, user: str, create_thread: Factory) -> None:
    thread = await chain(create_thread, 2)
    response = await api.request(
        "GET", url(thread["id"]), user=user, params={"view": "all", "leaf": "msg_x"}, headers={"Accept": NDJSON}
    )
    assert_problem(response, 422)


async def test_a_malformed_read_after_is_422(api: Api, user: str, create_thread: Factory) -> None:
    thread = await chain(create_thread, 1)
    headers = {"Accept": NDJSON, "X-Read-After": "not-a-position"}
    assert_problem(await api.request("GET", url(thread["id"]), user=user, headers=headers), 422)


# --- a client that reads slowly ---------------------------------------------------------------------------------


class SlowReader:
    """Reads a streamed answer straight from the ASGI app, one body chunk at a time: while the test holds a
    chunk the app waits in `send`, as it does behind a client that stopped reading (the server's flow control
    blocks the same await). Deterministic where a socket's buffers are not."""

    def __init__(self, app: ASGIApp, path: str, headers: dict[str, str], query: str = "") -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},  # uvicorn's
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "server": ("threadstore.test", 80),
            "client": ("127.0.0.1", 1234),
        }
        self._messages: asyncio.Queue[Message] = asyncio.Queue()
        self._go: asyncio.Queue[None] = asyncio.Queue()
        self._requested = False
        self.task = asyncio.create_task(app(scope, self._receive, self._send))
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.ended = False

    async def _receive(self) -> Message:
        if not self._requested:
            self._requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client never leaves
        raise AssertionError("unreachable")

    async def _send(self, message: Message) -> None:
        await self._messages.put(message)
        if message["type"] == "http.response.body" and message.get("more_body", False):
            await self._go.get()

    async def start(self) -> None:
        message = await asyncio.wait_for(self._messages.get(), 10)
        assert message["type"] == "http.response.start", message
        self.status = message["status"]
        self.headers = {k.decode(): v.decode() for k, v in message["headers"]}

    async def chunk(self) -> bytes | None:
        """The next chunk: the app then waits until `resume`. None once the answer ended."""
        if self.ended:
            return None
        message = await asyncio.wait_for(self._messages.get(), 10)
        if not message.get("more_body", False):
            self.ended = True
        body: bytes = message.get("body", b"")
        return body

    def resume(self) -> None:
        self._go.put_nowait(None)

    async def rest(self) -> bytes:
        """Reads to the end, without pausing."""
        body = b""
        while (chunk := await self.chunk()) is not None:
            body += chunk
            if not self.ended:
                self.resume()
        await asyncio.wait_for(self.task, 10)
        return body


def slow_reader(api: Api, user: str, thread_id: str, query: str = "") -> SlowReader:
    return SlowReader(api.app, url(thread_id), {**api.auth(user), "Accept": NDJSON}, query)


class RequestCheckouts:
    """Pool checkouts held by request handlers. Event delivery runs its own short units in background tasks
    (named `event-…`) at any moment; those say nothing about what a request holds."""

    def __init__(self, engine: Any) -> None:
        self._out: dict[int, str] = {}
        event.listen(engine.sync_engine, "checkout", self._checkout)
        event.listen(engine.sync_engine, "checkin", self._checkin)

    @property
    def held_by_requests(self) -> int:
        return sum(1 for task in self._out.values() if not task.startswith(BACKGROUND_TASKS))

    def _checkout(self, _dbapi: Any, record: Any, *_: Any) -> None:
        task = asyncio.current_task()
        self._out[id(record)] = task.get_name() if task is not None else ""

    def _checkin(self, _dbapi: Any, record: Any) -> None:
        self._out.pop(id(record), None)


async def no_transaction_stays_open(backend: Backend) -> bool:
    """True when no transaction of this run stays open. Event delivery runs its own short units in the
    background at any moment; one caught between its statements is gone milliseconds later, while one of the
    paused stream would last as long as the pause, which waits for this."""
    for _ in range(40):
        if not await idle_in_transaction(backend):
            return True
        await asyncio.sleep(0.05)
    return False


async def test_nothing_is_held_while_the_client_does_not_read(
    api: Api, user: str, create_thread: Factory, small_pages: int
) -> None:
    thread = await chain(create_thread, 9)
    checkouts = RequestCheckouts(api.database.engine)
    reader = slow_reader(api, user, thread["id"])
    await reader.start()
    assert reader.status == 200

    pauses = 0
    body = b""
    while (chunk := await reader.chunk()) is not None:
        body += chunk
        if reader.ended:
            break
        # The app waits in `send` for this client: it must hold no connection, and no transaction.
        assert checkouts.held_by_requests == 0
        if api.backend.is_postgres:
            assert await no_transaction_stays_open(api.backend)
        pauses += 1
        reader.resume()
    await reader.task
    assert pauses == 5  # a chunk per page of 2
    assert [m["seq"] for m in lines_of(body)] == list(range(1, 10))


@pytest.mark.parametrize(
    ("query", "expect_new"),
    [("", True), ("view=all", True), ("order=desc", False), ("view=all&order=desc", False)],
)
async def test_appends_during_the_stream_never_repeat_or_skip(
    api: Api, user: str, create_thread: Factory, small_pages: int, query: str, expect_new: bool
) -> None:
    thread = await chain(create_thread, 7)
    before = await stream(api, user, thread["id"], **dict(p.split("=") for p in query.split("&") if p))
    reader = slow_reader(api, user, thread["id"], query)
    await reader.start()
    body = await reader.chunk() or b""

    added = [(await append(api, user, thread["id"], f"late{i}"))["id"] for i in range(3)]

    reader.resume()
    body += await reader.rest()
    streamed = [m["id"] for m in lines_of(body)]
    assert len(streamed) == len(set(streamed)), "a message repeats"
    assert streamed == [m["id"] for m in before] + (added if expect_new else [])


async def test_pages_of_long_messages_are_shorter(
    api: Api, user: str, create_thread: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "WHOLE_FIRST_PAGE_SIZE", 2)
    monkeypatch.setattr(service, "WHOLE_PAGE_CHARS", 1000)
    sizes = [300] * 6 + [1] * 5 + [2000, 10]
    thread = await create_thread(messages=[{"content": "x" * size} for size in sizes])
    reader = slow_reader(api, user, thread["id"])
    await reader.start()
    pages = []
    while (chunk := await reader.chunk()) is not None:
        if chunk:
            pages.append([len(m["content"]) for m in lines_of(chunk)])
        if not reader.ended:
            reader.resume()
    await reader.task
    # Each page holds about 1,000 characters, sized from the page before; never fewer than one message.
    assert pages == [[300, 300], [300, 300, 300], [300, 1, 1], [1, 1, 1, 2000, 10]]


async def test_the_active_path_is_the_one_of_the_first_page(
    api: Api, user: str, create_thread: Factory, small_pages: int
) -> None:
    thread_id, ids = await branched(api, user, create_thread)
    reader = slow_reader(api, user, thread_id)
    await reader.start()
    body = await reader.chunk() or b""

    # A branch switch between two pages: the stream keeps the path it started on, nothing spliced.
    response = await api.request(
        "PATCH", f"/api/threads/{thread_id}", user=user, json={"current_message_id": ids["b3"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["current_message_id"] == ids["b5"]

    reader.resume()
    body += await reader.rest()
    assert [m["content"] for m in lines_of(body)] == ["m1", "m2", "c3", "c4", "c5", "c6", "c7"]
    assert [m["content"] for m in await stream(api, user, thread_id)] == ["m1", "m2", "b3", "b4", "b5"]


class SecondPageGate:
    """Pages of 2, and, once closed, the second page's read waits (inside its unit of work) until the test
    opens it: whatever the test does then happens after the 200 and the first chunk went out, on any server."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(service, "WHOLE_PAGE_SIZE", 2)
        monkeypatch.setattr(service, "WHOLE_FIRST_PAGE_SIZE", 2)
        self._monkeypatch = monkeypatch
        self._reached = asyncio.Event()
        self._open = asyncio.Event()
        self.cancelled = asyncio.Event()  # the held read was cancelled

    def close(self) -> None:
        real = service.list_messages
        reads = 0

        async def paced(*args: Any, **kwargs: Any) -> Any:
            nonlocal reads
            reads += 1
            if reads == 2:
                self._reached.set()
                try:
                    await self._open.wait()
                except asyncio.CancelledError:
                    self.cancelled.set()
                    raise
            return await real(*args, **kwargs)

        paced.__dict__.update(real.__dict__)  # the same declarations (from_replica)
        self._monkeypatch.setattr(service, "list_messages", paced)

    async def reached(self) -> None:
        await asyncio.wait_for(self._reached.wait(), 10)

    def open(self) -> None:
        self._open.set()


async def test_a_client_leaving_mid_stream_ends_it_and_leaks_nothing(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = SecondPageGate(monkeypatch)
    served = 0
    real_lines = router_module.ndjson_lines

    async def counted(pages: Any) -> Any:
        nonlocal served
        async for chunk in real_lines(pages):
            served += 1
            yield chunk

    monkeypatch.setattr(router_module, "ndjson_lines", counted)
    async with running_api(backend, make_settings(backend, tmp_path), real_socket=True, http="edge") as api:
        user = new_user()
        thread = await api.create_thread(user, messages=[{"content": f"m{i}"} for i in range(1, 10)])
        gate.close()
        headers = {**api.auth(user), "Accept": NDJSON}
        async with (
            httpx.AsyncClient(base_url=api.base_url, timeout=30) as client,
            client.stream("GET", url(thread["id"]), headers=headers) as response,
        ):
            assert response.status_code == 200
            chunks = response.aiter_raw()  # kept: a dropped iterator closes the connection when it is collected
            await anext(chunks)
            await gate.reached()  # the second page's read is under way, holding its connection
        # The client has gone: the server cancels the read in flight and reads nothing more.
        await asyncio.wait_for(gate.cancelled.wait(), 10)
        gate.open()
        await asyncio.sleep(0.2)
        assert served == 1
    # running_api checks, after shutdown, that every connection went back to the pool and no transaction is open.


# --- a failure after the stream started -------------------------------------------------------------------------


async def break_database(backend: Backend, pg_server: PgServer | None) -> None:
    """PostgreSQL: the database goes away (its sessions ended, no new one allowed). SQLite: the messages
    table goes away."""
    if backend.is_postgres:
        assert pg_server is not None and backend.dsn is not None
        name = backend.dsn.rsplit("/", 1)[1].split("?")[0]
        conn = await asyncpg.connect(pg_server.dsn())
        try:
            await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
        finally:
            await conn.close()
    else:
        import aiosqlite

        path = backend.url.split("///", 1)[1]
        async with aiosqlite.connect(path) as conn:
            await conn.execute("DROP TABLE messages")
            await conn.commit()


async def mend_database(backend: Backend, pg_server: PgServer | None) -> None:
    if backend.is_postgres:
        assert pg_server is not None and backend.dsn is not None
        name = backend.dsn.rsplit("/", 1)[1].split("?")[0]
        conn = await asyncpg.connect(pg_server.dsn())
        try:
            await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        finally:
            await conn.close()


@pytest.mark.parametrize("http", ["edge", "h11"])
@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_a_stream_that_fails_after_it_started_is_truncated(
    kind: str,
    http: Literal["edge", "h11"],
    pg_server: PgServer | None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gate = SecondPageGate(monkeypatch)
    # A database of this test only: it is broken on purpose.
    async with fresh_database(kind, pg_server, tmp_path) as backend:
        settings = make_settings(backend, tmp_path, max_transaction_attempts=2)
        async with running_api(backend, settings, real_socket=True, http=http) as api:
            user = new_user()
            thread = await api.create_thread(user, messages=[{"content": f"m{i}"} for i in range(1, 8)])
            gate.close()
            headers = {**api.auth(user), "Accept": NDJSON}
            received = b""
            async with (
                httpx.AsyncClient(base_url=api.base_url, timeout=30) as client,
                client.stream("GET", url(thread["id"]), headers=headers) as response,
            ):
                assert response.status_code == 200
                assert response.headers["transfer-encoding"] == "chunked"
                chunks = response.aiter_raw()
                received += await anext(chunks)
                await gate.reached()
                await break_database(backend, pg_server)
                gate.open()
                with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
                    async for chunk in chunks:
                        received += chunk
            await mend_database(backend, pg_server)
        assert [m["content"] for m in lines_of(received)] == ["m1", "m2"]


@pytest.mark.parametrize(("kind", "status"), [("sqlite", 500), ("postgresql", 503)])
async def test_a_database_failing_before_the_first_page_is_a_problem_answer(
    kind: str, status: int, pg_server: PgServer | None, tmp_path: Path
) -> None:
    async with fresh_database(kind, pg_server, tmp_path) as backend:
        settings = make_settings(backend, tmp_path, max_transaction_attempts=2)
        async with running_api(backend, settings) as api:
            user = new_user()
            thread = await api.create_thread(user, messages=[{"content": "m1"}])
            await break_database(backend, pg_server)
            try:
                response = await api.request("GET", url(thread["id"]), user=user, headers={"Accept": NDJSON})
            finally:
                await mend_database(backend, pg_server)
        assert_problem(response, status)
