"""What the thread view's buttons do to the stored thread: rename (and cancel), auto-rename, archive and
restore, delete after a confirmation."""

from __future__ import annotations

import re

from playwright.async_api import Page, expect

from tests.webapp.ui import Store, conversation, open_thread, question_and_answer, sign_in, thread_links, until

LISBON = "Lisbon trip with kids in March: can you help me plan three days?"


async def test_rename_sets_the_title_and_cancel_keeps_it(page: Page, token: str, store: Store) -> None:
    thread = await store.create_thread("Before")
    await sign_in(page, token)
    await open_thread(page, thread["id"], "Before")
    title = conversation(page).get_by_role("heading", level=2)
    await page.get_by_role("button", name="Rename", exact=True).click()
    field = page.get_by_label("Title", exact=True)
    await field.fill("Not this")
    await page.get_by_role("button", name="Cancel", exact=True).click()
    await expect(field).to_have_count(0)
    await expect(title).to_have_text("Before")
    await page.get_by_role("button", name="Rename", exact=True).click()
    await field.fill("After")
    await page.get_by_role("button", name="Save title", exact=True).click()
    await expect(title).to_have_text("After")
    await expect(thread_links(page).filter(has_text="After")).to_have_count(1)
    assert (await store.thread(thread["id"]))["title"] == "After"


async def test_auto_rename_titles_the_thread_from_its_first_question(page: Page, token: str, store: Store) -> None:
    thread = await store.create_thread(messages=question_and_answer(LISBON, "Gladly."))
    await sign_in(page, token)
    await open_thread(page, thread["id"])
    await page.get_by_role("button", name="Auto-rename", exact=True).click()

    async def titled() -> str | None:
        title: str | None = (await store.thread(thread["id"]))["title"]
        return title

    title = await until(titled, "the thread got a title")
    assert "Lisbon" in title
    await expect(conversation(page).get_by_role("heading", level=2)).to_have_text(title)


async def test_archive_and_restore_move_the_thread_between_the_lists(page: Page, token: str, store: Store) -> None:
    thread = await store.create_thread("Seasonal")
    await sign_in(page, token)
    await open_thread(page, thread["id"], "Seasonal")
    await page.get_by_role("button", name="Archive", exact=True).click()
    await expect(page.get_by_role("button", name="Restore", exact=True)).to_be_visible()
    await expect(thread_links(page)).to_have_count(0)  # the list shows active threads
    assert (await store.thread(thread["id"]))["status"] == "archived"
    await page.get_by_role("button", name="Restore", exact=True).click()
    await expect(page.get_by_role("button", name="Archive", exact=True)).to_be_visible()
    await expect(thread_links(page)).to_have_text(["Seasonal"])
    assert (await store.thread(thread["id"]))["status"] == "active"


async def test_delete_asks_first_then_removes_the_thread_for_good(page: Page, token: str, store: Store) -> None:
    thread = await store.create_thread("Doomed", question_and_answer("Bye?", "Bye."))
    await sign_in(page, token)
    await open_thread(page, thread["id"], "Doomed")
    await page.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.get_by_role("dialog")
    await dialog.get_by_role("button", name="Cancel", exact=True).click()
    await expect(dialog).to_be_hidden()
    await store.thread(thread["id"])  # still there
    await page.get_by_role("button", name="Delete", exact=True).click()
    await dialog.get_by_role("button", name="Delete permanently", exact=True).click()
    await expect(page).to_have_url(re.compile(r"#/$"))
    await expect(thread_links(page)).to_have_count(0)
    await store.call("GET", f"/api/threads/{thread['id']}", 404)
