"""POST /api/threads/{id}/auto-rename through a real OpenAI-compatible HTTP server, run by the test.

The fake server runs in this test's event loop, so its handler can pause on an asyncio.Event while the test
changes the thread, and can look at the app's pool while the title is being generated.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import event
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.conftest import Api, Factory, idle_in_transaction
from tests.harness.app import BACKGROUND_TASKS
from tests.harness.server import serve_in_process
from tests.threads.helpers import append, assert_problem, assert_thread_response, get_thread
from threadstore.titles import summarize

URL = "/api/threads"
MODEL = "test-model"
LLM_TIMEOUT = 1.5
LISBON = "Can you help me plan a three day trip to Lisbon in March with kids?"
LLM_TITLE = "Lisbon family trip"

Reply = Callable[[dict[str, Any]], Response]


def completion(content: object) -> JSONResponse:
    return JSONResponse(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        }
    )


@dataclass
class FakeLlm:
    """A chat-completions endpoint whose answer and timing each test chooses."""

    base_url: str = ""
    reply: Reply = field(default=lambda _: completion(LLM_TITLE))
    # Awaited inside the handler, before answering: the window in which "the LLM is thinking".
    during_call: Callable[[], Awaitable[None]] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    closing: asyncio.Event = field(default_factory=asyncio.Event)

    def reset(self) -> None:
        self.reply = lambda _: completion(LLM_TITLE)
        self.during_call = None
        self.requests = []
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    def hold(self) -> None:
        """Make the handler wait until the test calls `release.set()` (or the server shuts down)."""

        async def wait() -> None:
            release = asyncio.create_task(self.release.wait())
            closing = asyncio.create_task(self.closing.wait())
            await asyncio.wait({release, closing}, return_when=asyncio.FIRST_COMPLETED)
            release.cancel()
            closing.cancel()

        self.during_call = wait

    async def handle(self, request: Request) -> Response:
        self.requests.append(await request.json())
        self.entered.set()
        if self.during_call is not None:
            await self.during_call()
        return self.reply(self.requests[-1])


@pytest.fixture(scope="module")
async def llm_server() -> AsyncIterator[FakeLlm]:
    """One server for the module (starting and stopping uvicorn costs a few hundred milliseconds)."""
    fake = FakeLlm()
    app = Starlette(routes=[Route("/v1/chat/completions", fake.handle, methods=["POST"])])
    async with serve_in_process(app, graceful_seconds=2) as url:
        fake.base_url = f"{url}/v1"
        try:
            yield fake
        finally:
            fake.closing.set()


@pytest.fixture
async def fake_llm(llm_server: FakeLlm) -> AsyncIterator[FakeLlm]:
    llm_server.reset()
    try:
        yield llm_server
    finally:
        llm_server.release.set()  # a handler still holding its answer finishes now


@pytest.fixture
def settings_overrides(fake_llm: FakeLlm) -> dict[str, Any]:
    return {"llm_base_url": fake_llm.base_url, "llm_model": MODEL, "llm_timeout": LLM_TIMEOUT}


async def rename(api: Api, user: str, thread_id: str) -> Any:
    return await api.request("POST", f"{URL}/{thread_id}/auto-rename", user=user)


# --- the LLM's title --------------------------------------------------------------------------------------------


async def test_title_comes_from_the_llm(api: Api, user: str, create_thread: Factory, fake_llm: FakeLlm) -> None:
    before = await create_thread(
        metadata={"topic": "travel"},
        messages=[
            {"role": "system", "content": "You are a travel agent."},
            {"role": "assistant", "content": "Where would you like to go?"},
            {"role": "user", "content": LISBON},
            {"role": "user", "content": "Also, what about Porto?"},
        ],
    )

    response = await rename(api, user, before["id"])

    after = assert_thread_response(response)
    assert after["title"] == LLM_TITLE
    assert response.headers["x-title-source"] == "llm"
    assert after["metadata"] == {"topic": "travel"}
    assert after["version"] == before["version"] + 1
    assert await get_thread(api, user, before["id"]) == after
    [sent] = fake_llm.requests
    assert sent["model"] == MODEL
    assert sent["messages"][-1] == {"role": "user", "content": LISBON}
    assert all("Porto" not in m["content"] and "travel agent" not in m["content"] for m in sent["messages"])


async def test_llm_answer_is_cleaned(api: Api, user: str, create_thread: Factory, fake_llm: FakeLlm) -> None:
    fake_llm.reply = lambda _: completion('\n  "Title: Lisbon Family Trip."\nThis title captures the request.')
    created = await create_thread(messages=[{"content": LISBON}])

    response = await rename(api, user, created["id"])

    assert assert_thread_response(response)["title"] == "Lisbon Family Trip"
    assert response.headers["x-title-source"] == "llm"


async def test_llm_answer_loses_what_a_title_may_not_hold(
    api: Api, user: str, create_thread: Factory, fake_llm: FakeLlm
) -> None:
    fake_llm.reply = lambda _: completion("\u2067Lisbon\u2069 family \u200etrip\U000e0041")
    created = await create_thread(messages=[{"content": LISBON}])

    response = await rename(api, user, created["id"])

    assert assert_thread_response(response)["title"] == "Lisbon family trip"
    assert response.headers["x-title-source"] == "llm"


async def test_llm_answer_is_cut_to_8_words(api: Api, user: str, create_thread: Factory, fake_llm: FakeLlm) -> None:
    fake_llm.reply = lambda _: completion("one two three four five six seven eight nine ten")
    created = await create_thread(messages=[{"content": LISBON}])

    title = assert_thread_response(await rename(api, user, created["id"]))["title"]

    assert title == "one two three four five six seven eight"


class RequestCheckouts:
    """Pool checkouts held by request handlers. Event delivery and housekeeping run their own short units in
    background tasks (BACKGROUND_TASKS) at any moment; those say nothing about what a request holds."""

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


async def test_no_connection_or_transaction_is_held_while_the_llm_runs(
    api: Api, user: str, create_thread: Factory, fake_llm: FakeLlm
) -> None:
    seen: dict[str, Any] = {}
    checkouts = RequestCheckouts(api.database.engine)

    async def look() -> None:
        seen["checked_out"] = checkouts.held_by_requests
        if api.backend.is_postgres:
            # Event delivery commits its own short units in the background at any moment (here: publishing the
            # create's event); one caught between its statements is gone milliseconds later, while a
            # transaction of the request would last as long as this call, which waits for us.
            for _ in range(40):
                seen["idle_in_transaction"] = await idle_in_transaction(api.backend)
                if not seen["idle_in_transaction"]:
                    break
                await asyncio.sleep(0.05)

    fake_llm.during_call = look
    created = await create_thread(messages=[{"content": LISBON}])

    response = await rename(api, user, created["id"])

    assert response.status_code == 200, response.text
    assert seen["checked_out"] == 0
    assert seen.get("idle_in_transaction", []) == []


# --- falling back -----------------------------------------------------------------------------------------------


FAILURES: dict[str, Reply] = {
    "http-500": lambda _: Response('{"error": "boom"}', status_code=500, media_type="application/json"),
    "http-429": lambda _: JSONResponse({"error": {"message": "slow down"}}, status_code=429),
    "html": lambda _: Response("<html><body>Bad gateway</body></html>", media_type="text/html"),
    "not-json": lambda _: Response("{{{{", media_type="application/json"),
    "no-choices": lambda _: JSONResponse({"error": {"message": "no"}}),
    "empty-choices": lambda _: JSONResponse({"choices": []}),
    "null-content": lambda _: completion(None),
    "number-content": lambda _: completion(42),
    "blank-content": lambda _: completion("   \n  "),
    "punctuation": lambda _: completion(' "?!..." — '),
}


async def test_failing_or_garbage_llm_falls_back_to_the_summarizer(
    api: Api, user: str, create_thread: Factory, fake_llm: FakeLlm, subtests: pytest.Subtests
) -> None:
    for failure, reply in FAILURES.items():
        with subtests.test(failure):
            fake_llm.reply = reply
            fake_llm.requests.clear()
            before = await create_thread(messages=[{"content": LISBON}])

            response = await rename(api, user, before["id"])

            after = assert_thread_response(response)
            assert response.headers["x-title-source"] == "fallback"
            assert after["title"] == summarize(LISBON)
            assert after["version"] == before["version"] + 1
            assert len(fake_llm.requests) == 1


async def test_slow_llm_falls_back_within_the_timeout(
    api: Api, user: str, create_thread: Factory, fake_llm: FakeLlm
) -> None:
    fake_llm.hold()  # never released: the LLM "thinks" until the server shuts down
    created = await create_thread(messages=[{"content": LISBON}])

    started = time.monotonic()
    response = await rename(api, user, created["id"])
    elapsed = time.monotonic() - started

    assert assert_thread_response(response)["title"] == summarize(LISBON)
    assert response.headers["x-title-source"] == "fallback"
    assert LLM_TIMEOUT * 0.9 <= elapsed < LLM_TIMEOUT + 1.5


async def test_llm_is_not_asked_when_there_is_no_user_message(
    api: Api, user: str, create_thread: Factory, fake_llm: FakeLlm
) -> None:
    created = await create_thread(messages=[{"role": "assistant", "content": "Hi!"}])

    assert_problem(await rename(api, user, created["id"]), 422)
    assert fake_llm.requests == []


async def test_llm_is_not_asked_for_an_archived_thread(
    api: Api, user: str, create_thread: Factory, fake_llm: FakeLlm
) -> None:
    created = await create_thread(messages=[{"content": LISBON}])
    await api.request("DELETE", f"{URL}/{created['id']}", user=user)

    assert_problem(await rename(api, user, created["id"]), 409)
    assert fake_llm.requests == []


# --- the thread changes while the LLM is thinking -------------------------------------------------------------


async def rename_while(api: Api, user: str, thread_id: str, fake_llm: FakeLlm, meanwhile: Any) -> Any:
    """Starts an auto-rename, runs `meanwhile()` while the LLM holds its answer, then lets it answer."""
    fake_llm.hold()
    renaming = asyncio.create_task(rename(api, user, thread_id))
    try:
        await asyncio.wait_for(fake_llm.entered.wait(), 5)
        await meanwhile()
    finally:
        fake_llm.release.set()
    return await renaming


async def test_manual_rename_during_generation_wins_and_auto_rename_is_409(
    api: Api, user: str, create_thread: Factory, fake_llm: FakeLlm
) -> None:
    created = await create_thread(messages=[{"content": LISBON}])
    manual: dict[str, Any] = {}

    async def rename_by_hand() -> None:
        response = await api.request("PATCH", f"{URL}/{created['id']}", user=user, json={"title": "My own title"})
        manual.update(assert_thread_response(response))

    response = await rename_while(api, user, created["id"], fake_llm, rename_by_hand)

    assert assert_problem(response, 409)["reason"] == "version"
    after = await get_thread(api, user, created["id"])
    assert after == manual
    assert (after["title"], after["version"]) == ("My own title", 2)


async def test_message_appended_during_generation_makes_auto_rename_409(
    api: Api, user: str, create_thread: Factory, fake_llm: FakeLlm
) -> None:
    created = await create_thread(messages=[{"content": LISBON}])

    async def add_message() -> None:
        assert (await append(api, user, created["id"], "And Porto?")).status_code == 201

    assert_problem(await rename_while(api, user, created["id"], fake_llm, add_message), 409)
    after = await get_thread(api, user, created["id"])
    assert (after["title"], after["version"], after["message_count"]) == (None, 2, 2)


async def test_thread_archived_during_generation_makes_auto_rename_409(
    api: Api, user: str, create_thread: Factory, fake_llm: FakeLlm
) -> None:
    created = await create_thread(messages=[{"content": LISBON}])

    async def archive() -> None:
        assert (await api.request("DELETE", f"{URL}/{created['id']}", user=user)).status_code == 200

    assert_problem(await rename_while(api, user, created["id"], fake_llm, archive), 409)
    after = await get_thread(api, user, created["id"])
    assert (after["title"], after["status"]) == (None, "archived")


async def test_thread_deleted_during_generation_makes_auto_rename_404(
    api: Api, user: str, create_thread: Factory, fake_llm: FakeLlm
) -> None:
    created = await create_thread(messages=[{"content": LISBON}])

    async def delete_for_good() -> None:
        params = {"permanent": "true"}
        response = await api.request("DELETE", f"{URL}/{created['id']}", user=user, params=params)
        assert response.status_code == 204

    assert_problem(await rename_while(api, user, created["id"], fake_llm, delete_for_good), 404)
    assert_problem(await api.request("GET", f"{URL}/{created['id']}", user=user), 404)


async def test_a_noop_patch_during_generation_does_not_block_the_title(
    api: Api, user: str, create_thread: Factory, fake_llm: FakeLlm
) -> None:
    created = await create_thread(messages=[{"content": LISBON}])

    async def touch_nothing() -> None:
        response = await api.request("PATCH", f"{URL}/{created['id']}", user=user, json={"title": None})
        assert assert_thread_response(response)["version"] == 1

    response = await rename_while(api, user, created["id"], fake_llm, touch_nothing)

    assert assert_thread_response(response)["title"] == LLM_TITLE
    assert response.headers["x-title-source"] == "llm"
