"""At a phone's width (375 by 740) nothing scrolls sideways, and a person can go from the list to a thread and
back."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, ViewportSize, expect

from tests.webapp.ui import Store, conversation, messages, question_and_answer, sign_in, thread_links, threads

WIDTH = 375
LONG_WORD = "Supercalifragilisticexpialidocious" * 3


@pytest.fixture
def viewport() -> ViewportSize:
    return {"width": WIDTH, "height": 740}


async def fits(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"the page is {width} px wide at {page.url}"


async def test_at_a_phone_width_the_list_and_a_thread_fit_and_back_returns_to_the_list(
    page: Page, token: str, store: Store
) -> None:
    thread = await store.create_thread("A rather long title for a thread read on a small phone screen")
    await store.append(thread["id"], f"A long word that must wrap: {LONG_WORD}")
    await store.append(thread["id"], "It wraps.", role="assistant")
    await page.goto("/app/")
    await expect(page.get_by_label("Access token")).to_be_visible()
    await fits(page)
    await sign_in(page, token)
    await fits(page)
    await thread_links(page).first.click()
    await expect(conversation(page).get_by_role("heading", level=2)).to_have_text(thread["title"])
    await expect(messages(page, "assistant")).to_be_visible()
    await expect(page.get_by_label("Message", exact=True)).to_be_visible()
    await fits(page)
    await page.go_back()
    await expect(page).to_have_url(re.compile(r"/app/(#/?)?$"))
    await expect(threads(page)).to_be_visible()
    await expect(thread_links(page).first).to_be_visible()
    await fits(page)


async def test_at_a_phone_width_a_thread_can_be_read_and_answered(page: Page, token: str, store: Store) -> None:
    thread = await store.create_thread("Phone", question_and_answer("Small screen?", "Fine."))
    await sign_in(page, token)
    await thread_links(page).first.click()
    await expect(messages(page, "user")).to_contain_text("Small screen?")
    await page.get_by_label("Demo responder").set_checked(False)
    await page.get_by_label("Message", exact=True).fill("Typed on a phone")
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(messages(page, "user").filter(has_text="Typed on a phone")).to_be_visible()
    await fits(page)
    assert [m["content"] for m in await store.path(thread["id"])][-1] == "Typed on a phone"
