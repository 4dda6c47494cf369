"""The web app as a person meets it, found by role and accessible name only (the UI contract), and the same
user's data as the API stores it: what the page shows is checked against what was stored."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Locator, Page, expect

from tests.harness.client import Api

TOKEN_KEY = "threadstore.token"
TIMEOUT_MS = 15_000  # a bound on waiting for a condition on a shared machine: nothing is timed


async def sign_in(page: Page, token: str) -> None:
    """Opens /app/ and signs in through the token screen; returns once the thread list is shown."""
    await page.goto("/app/")
    await page.get_by_label("Access token").fill(token)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(threads(page)).to_be_visible()


def threads(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Threads")


def thread_links(page: Page) -> Locator:
    return threads(page).get_by_role("listitem").get_by_role("link")


def conversation(page: Page) -> Locator:
    return page.get_by_role("main")


def messages(page: Page, role: str) -> Locator:
    return conversation(page).get_by_role("article", name=f"{role} message", exact=True)


def alert(page: Page) -> Locator:
    return page.get_by_role("alert")


def status(page: Page) -> Locator:
    return page.get_by_role("status")


async def open_thread(page: Page, thread_id: str, title: str | None = None) -> None:
    """Goes to the thread's address (as a link or a second tab does) and waits for its heading."""
    await page.goto(f"/app/#/threads/{thread_id}")
    await expect(conversation(page).get_by_role("heading", level=2)).to_have_text(title or "Untitled")


async def until_live(page: Page) -> None:
    await expect(status(page)).to_contain_text("Live")


async def demo_responder(page: Page, on: bool) -> None:
    await page.get_by_role("checkbox", name="Demo responder").set_checked(on)


def thread_address(thread_id: str) -> re.Pattern[str]:
    return re.compile(re.escape(f"#/threads/{thread_id}") + "$")


@dataclass
class Store:
    """The test user's threads through the HTTP API of the same server."""

    api: Api
    user: str

    async def call(self, method: str, url: str, expected: int = 200, **kwargs: Any) -> Any:
        response = await self.api.request(method, url, user=self.user, **kwargs)
        assert response.status_code == expected, (method, url, response.status_code, response.text)
        return response.json() if response.content else None

    async def create_thread(self, title: str | None = None, messages: list[dict[str, Any]] | None = None) -> Any:
        body: dict[str, Any] = {}
        if title is not None:
            body["title"] = title
        if messages is not None:
            body["messages"] = messages
        return await self.call("POST", "/api/threads", 201, json=body)

    async def thread(self, thread_id: str) -> Any:
        return await self.call("GET", f"/api/threads/{thread_id}")

    async def path(self, thread_id: str, **params: str) -> list[Any]:
        """The thread's active path (or another selection), every page of it."""
        found: list[Any] = []
        cursor: str | None = None
        while True:
            page = await self.call(
                "GET",
                f"/api/threads/{thread_id}/messages",
                params={"limit": "100", **params, **({"cursor": cursor} if cursor else {})},
            )
            found.extend(page["data"])
            if not page["has_more"]:
                return found
            cursor = page["next_cursor"]

    async def append(self, thread_id: str, content: str | list[dict[str, Any]], **body: Any) -> Any:
        return await self.call("POST", f"/api/threads/{thread_id}/messages", 201, json={"content": content, **body})

    async def patch(self, thread_id: str, **body: Any) -> Any:
        return await self.call("PATCH", f"/api/threads/{thread_id}", json=body)


def question_and_answer(question: str, answer: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]


async def until(check: Callable[[], Awaitable[Any]], what: str, within: float = TIMEOUT_MS / 1000) -> Any:
    """Polls `check` until it returns something truthy (the API catching up with a click); returns that."""
    deadline = time.monotonic() + within
    while not (result := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(0.05)
    return result


def opened_thread_id(page: Page) -> str:
    match = re.search(r"#/threads/([^/?#]+)$", page.url)
    assert match, f"no thread is open at {page.url}"
    return match.group(1)
