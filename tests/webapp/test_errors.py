"""An error in plain words with the request id of the answer that caused it: a page that has not heard that
its thread was archived (its event stream is held back) sends a message and gets the 409."""

from __future__ import annotations

import contextlib

from playwright.async_api import Error, Page, Route, expect

from tests.webapp.ui import (
    Store,
    alert,
    demo_responder,
    messages,
    open_thread,
    question_and_answer,
    sign_in,
    thread_links,
)
from tests.webapp.watch import PageWatch


async def test_a_send_to_an_archived_thread_shows_the_conflict_with_its_request_id(
    page: Page, token: str, store: Store, watch: PageWatch
) -> None:
    watch.expect_status(409)
    held: list[Route] = []

    async def hold_event_stream(route: Route) -> None:
        if route.request.resource_type == "eventsource":
            held.append(route)  # never answered: the page hears no event
        else:
            await route.continue_()

    await page.route("**/api/events**", hold_event_stream)
    thread = await store.create_thread("Stale", question_and_answer("Open?", "For now."))
    await sign_in(page, token)
    await open_thread(page, thread["id"], "Stale")
    await demo_responder(page, False)
    await store.call("DELETE", f"/api/threads/{thread['id']}")  # archived behind the page's back
    await page.get_by_label("Message", exact=True).fill("One more thing")
    async with page.expect_response(lambda r: r.request.method == "POST" and "/messages" in r.url) as answered:
        await page.get_by_role("button", name="Send", exact=True).click()
    response = await answered.value
    assert response.status == 409
    request_id = response.headers["x-request-id"]
    assert (await response.json())["request_id"] == request_id
    shown = alert(page)
    await expect(shown).to_contain_text("archived")
    await expect(shown).to_contain_text(f"Request ID: {request_id}")
    await expect(shown).not_to_contain_text("urn:threadstore")
    await expect(messages(page, "user")).to_have_count(1)
    await shown.get_by_role("button", name="Dismiss", exact=True).click()
    await expect(shown).to_be_hidden()
    assert len(await store.path(thread["id"])) == 2
    for route in held:
        with contextlib.suppress(Error):
            await route.abort("aborted")


async def test_a_request_that_cannot_reach_the_server_says_so_without_a_request_id(
    page: Page, token: str, store: Store, watch: PageWatch
) -> None:
    await store.create_thread("Offline")
    await sign_in(page, token)
    await expect(thread_links(page)).to_have_text(["Offline"])
    watch.expect_offline()
    await page.context.set_offline(True)
    await page.get_by_role("button", name="New thread", exact=True).click()
    shown = alert(page)
    await expect(shown).to_contain_text("Can't reach the server.")
    await expect(shown).not_to_contain_text("Request ID")
    await page.context.set_offline(False)
    await shown.get_by_role("button", name="Dismiss", exact=True).click()
    await expect(shown).to_be_hidden()
    assert len((await store.call("GET", "/api/threads"))["data"]) == 1
