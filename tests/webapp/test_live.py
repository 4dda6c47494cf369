"""The event stream in the page: a second tab watches the demo responder's reply grow and ends with what the
API stored; a tab open on a thread while the server is SIGKILLed (it says "Reconnecting") and started again
shows every message written right after the restart exactly once, and says "Live" again; a reply the page's
demo responder is writing when the server restarts ends as the same prompt's reply does without one, stored
once."""

from __future__ import annotations

from typing import Any

from playwright.async_api import BrowserContext, Page, expect

from tests.harness.processes import ServeProcess
from tests.webapp.ui import (
    Store,
    demo_responder,
    messages,
    open_thread,
    question_and_answer,
    sign_in,
    status,
    until,
    until_live,
)
from tests.webapp.watch import PageWatch

# Every text an assistant message showed, as it changed: what a person watching the tab saw.
RECORD_REPLIES = """() => {
  window.seenReplies = [];
  new MutationObserver(() => {
    for (const article of document.querySelectorAll('article[aria-label="assistant message"]')) {
      const text = article.innerText;
      if (window.seenReplies.at(-1) !== text) window.seenReplies.push(text);
    }
  }).observe(document.body, {subtree: true, childList: true, characterData: true});
}"""


async def test_a_second_tab_watches_the_reply_grow_to_what_was_stored(
    context: BrowserContext, page: Page, token: str, store: Store
) -> None:
    thread = await store.create_thread("Watched")
    watcher = await context.new_page()
    for tab in (page, watcher):
        await sign_in(tab, token)
        await open_thread(tab, thread["id"], "Watched")
        await until_live(tab)
    await watcher.evaluate(RECORD_REPLIES)
    await demo_responder(page, True)
    composer = page.get_by_label("Message", exact=True)
    await composer.fill("Tell me about the trams of Lisbon")
    await composer.press("Enter")

    async def finished() -> Any:
        path = await store.path(thread["id"])
        return len(path) == 2 and path[1]["status"] == "completed" and path[1]

    reply = await until(finished, "the demo reply completed", within=60)
    assert reply["role"] == "assistant" and reply["content"]
    for tab in (watcher, page):
        shown = messages(tab, "assistant")
        await expect(shown).to_contain_text(reply["content"])
        await expect(shown).not_to_contain_text("Writing…")
    await expect(messages(watcher, "user")).to_contain_text("Tell me about the trams of Lisbon")
    seen: list[str] = await watcher.evaluate("window.seenReplies")
    first_word = reply["content"].split()[0]
    growing = [text for text in seen if "Writing…" in text and first_word in text and reply["content"] not in text]
    assert growing, f"the watching tab never showed the reply part-written: {seen}"


async def test_the_page_follows_the_thread_across_a_server_restart_without_loss_or_repeat(
    page: Page, token: str, store: Store, server: ServeProcess, watch: PageWatch
) -> None:
    thread = await store.create_thread("Resilient", question_and_answer("Still there?", "Yes."))
    await sign_in(page, token)
    await open_thread(page, thread["id"], "Resilient")
    await demo_responder(page, False)
    await until_live(page)
    watch.expect_server_down()
    await server.kill()
    await expect(status(page)).to_contain_text("Reconnecting")
    await server.start()
    written = [
        (await store.append(thread["id"], f"written after the restart, number {n}"))["content"] for n in range(3)
    ]
    for content in written:
        await expect(messages(page, "user").filter(has_text=content)).to_have_count(1)
    await until_live(page)
    await expect(status(page)).not_to_contain_text("Reconnecting")
    await expect(messages(page, "user")).to_have_count(4)
    assert [m["content"] for m in await store.path(thread["id"])][2:] == written


async def test_a_reply_the_page_is_writing_when_the_server_restarts_ends_whole_and_stored_once(
    page: Page, token: str, store: Store, server: ServeProcess, watch: PageWatch
) -> None:
    prompt = "Which museum should we see first?"
    calm = await store.create_thread("Calm")
    stormy = await store.create_thread("Stormy")
    await sign_in(page, token)

    async def reply_in(thread_id: str, *, written: bool) -> Any:
        path = await store.path(thread_id)
        if len(path) < 2:
            return None
        reply = path[1]
        return reply if (reply["content"] if written else reply["status"] == "completed") else None

    async def ask(thread_id: str, title: str) -> None:
        await open_thread(page, thread_id, title)
        await demo_responder(page, True)
        await page.get_by_label("Message", exact=True).fill(prompt)
        await page.get_by_role("button", name="Send", exact=True).click()

    await ask(calm["id"], "Calm")  # the same prompt answered without a restart: what the reply must end as
    expected = (await until(lambda: reply_in(calm["id"], written=False), "the calm reply", within=60))["content"]
    await ask(stormy["id"], "Stormy")
    started = await until(lambda: reply_in(stormy["id"], written=True), "the reply started")
    assert started["status"] == "in_progress" and started["content"] != expected
    watch.expect_server_down()
    await server.restart()
    reply = await until(lambda: reply_in(stormy["id"], written=False), "the reply completed", within=60)
    assert reply["content"] == expected
    assert [m["role"] for m in await store.path(stormy["id"], view="all")] == ["user", "assistant"]
    shown = messages(page, "assistant")
    await expect(shown).to_have_count(1)
    await expect(shown).to_contain_text(expected)
    await expect(shown).not_to_contain_text("Writing…")
