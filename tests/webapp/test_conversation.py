"""A conversation in the page: sending stores the message; an edit keeps the original as an alternative and
the arrows switch the thread's active path; Regenerate adds a sibling answer written by the demo responder;
feedback toggles; a fork copies the path up to a message into a new thread."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import Page, expect

from tests.webapp.ui import (
    Store,
    conversation,
    demo_responder,
    messages,
    open_thread,
    opened_thread_id,
    question_and_answer,
    sign_in,
    thread_address,
    thread_links,
    until,
)

DEMO_NOTE = "Demo: replies are written by this page word by word, not by a model."


async def test_a_sent_message_is_stored_and_shown_after_a_reload(page: Page, token: str, store: Store) -> None:
    await sign_in(page, token)
    await page.get_by_role("button", name="New thread", exact=True).click()
    await expect(page).to_have_url(re.compile(r"#/threads/[^/]+$"))
    thread_id = opened_thread_id(page)
    await expect(conversation(page).get_by_role("heading", level=2)).to_have_text("Untitled")
    await expect(thread_links(page).and_(page.locator(f'[href="#/threads/{thread_id}"]'))).to_have_text("Untitled")
    await demo_responder(page, False)
    composer = page.get_by_label("Message", exact=True)
    await composer.fill("How long is the flight to Lisbon?")
    await composer.press("Enter")
    await expect(messages(page, "user")).to_contain_text("How long is the flight to Lisbon?")
    await expect(composer).to_have_value("")
    await composer.fill("Two lines:")
    await composer.press("Shift+Enter")
    await composer.press_sequentially("the second one")
    await page.get_by_role("button", name="Send", exact=True).click()
    await expect(messages(page, "user")).to_have_count(2)
    stored = [m["content"] for m in await store.path(thread_id)]
    assert stored == ["How long is the flight to Lisbon?", "Two lines:\nthe second one"]
    await page.reload()
    await expect(messages(page, "user")).to_have_count(2)
    await expect(messages(page, "user").first).to_contain_text("How long is the flight to Lisbon?")
    await expect(messages(page, "assistant")).to_have_count(0)


async def test_an_edit_adds_an_alternative_and_the_arrows_switch_the_active_path(
    page: Page, token: str, store: Store
) -> None:
    thread = await store.create_thread("Buses", question_and_answer("Which bus goes to Belem?", "Tram 15 does."))
    original_question, answer = await store.path(thread["id"])
    await sign_in(page, token)
    await open_thread(page, thread["id"], "Buses")
    await demo_responder(page, False)
    question = messages(page, "user")
    await question.get_by_role("button", name="Edit", exact=True).click()
    editor = page.get_by_label("Edit message", exact=True)
    await expect(editor).to_have_value("Which bus goes to Belem?")
    await editor.fill("Which tram goes to Belem?")
    await page.get_by_role("button", name="Save edit", exact=True).click()
    await expect(question).to_contain_text("Which tram goes to Belem?")
    await expect(question).to_contain_text("2/2")
    await expect(messages(page, "assistant")).to_have_count(0)
    (edited,) = await store.path(thread["id"])
    assert edited["content"] == "Which tram goes to Belem?" and edited["parent_id"] == original_question["parent_id"]
    assert (await store.thread(thread["id"]))["current_message_id"] == edited["id"]

    await question.get_by_role("button", name="Previous alternative", exact=True).click()
    await expect(question).to_contain_text("Which bus goes to Belem?")
    await expect(question).to_contain_text("1/2")
    await expect(messages(page, "assistant")).to_contain_text("Tram 15 does.")
    assert (await store.thread(thread["id"]))["current_message_id"] == answer["id"]

    await question.get_by_role("button", name="Next alternative", exact=True).click()
    await expect(question).to_contain_text("Which tram goes to Belem?")
    await expect(question).to_contain_text("2/2")
    await expect(messages(page, "assistant")).to_have_count(0)
    assert (await store.thread(thread["id"]))["current_message_id"] == edited["id"]


async def test_regenerate_adds_a_sibling_answer_written_by_the_demo_responder(
    page: Page, token: str, store: Store
) -> None:
    thread = await store.create_thread("Views", question_and_answer("Name a Lisbon viewpoint.", "Graça."))
    question, first_answer = await store.path(thread["id"])
    await sign_in(page, token)
    await open_thread(page, thread["id"], "Views")
    await expect(page.get_by_role("checkbox", name="Demo responder")).to_be_checked()
    await expect(page.get_by_text(DEMO_NOTE)).to_be_visible()
    answer = messages(page, "assistant")
    await answer.get_by_role("button", name="Regenerate", exact=True).click()
    await expect(answer).to_contain_text("2/2")

    async def finished() -> Any:
        siblings = await store.path(thread["id"], siblings_of=first_answer["id"])
        return len(siblings) == 2 and siblings[1]["status"] == "completed" and siblings[1]

    regenerated = await until(finished, "the regenerated answer completed")
    assert regenerated["parent_id"] == question["id"] and regenerated["content"]
    assert regenerated["finish_reason"] == "stop"
    await expect(answer).not_to_contain_text("Writing…")
    await expect(answer).to_contain_text(regenerated["content"])
    assert (await store.thread(thread["id"]))["current_message_id"] == regenerated["id"]
    await answer.get_by_role("button", name="Previous alternative", exact=True).click()
    await expect(answer).to_contain_text("Graça.")
    await expect(answer).to_contain_text("1/2")


async def test_feedback_buttons_toggle_and_are_stored(page: Page, token: str, store: Store) -> None:
    thread = await store.create_thread("Feedback", question_and_answer("Is it warm in May?", "Mostly, yes."))
    _, reply = await store.path(thread["id"])
    await sign_in(page, token)
    await open_thread(page, thread["id"], "Feedback")
    answer = messages(page, "assistant")
    good = answer.get_by_role("button", name="Good response", exact=True)
    bad = answer.get_by_role("button", name="Bad response", exact=True)
    await expect(good).to_have_attribute("aria-pressed", "false")
    await expect(bad).to_have_attribute("aria-pressed", "false")

    async def rating() -> str | None:
        stored = await store.call("GET", f"/api/threads/{thread['id']}/messages/{reply['id']}")
        return None if stored["feedback"] is None else str(stored["feedback"]["rating"])

    async def stored_as(expected: str | None) -> None:
        async def check() -> bool:
            return await rating() == expected

        await until(check, f"the feedback stored as {expected}")

    await good.click()
    await expect(good).to_have_attribute("aria-pressed", "true")
    await stored_as("up")
    await bad.click()
    await expect(bad).to_have_attribute("aria-pressed", "true")
    await expect(good).to_have_attribute("aria-pressed", "false")
    await stored_as("down")
    await bad.click()  # pressing the pressed one again takes the feedback back
    await expect(bad).to_have_attribute("aria-pressed", "false")
    await stored_as(None)


async def test_fork_from_a_message_opens_a_new_thread_holding_the_path_up_to_it(
    page: Page, token: str, store: Store
) -> None:
    thread = await store.create_thread(
        "Fork source", [*question_and_answer("First?", "One."), *question_and_answer("Second?", "Two.")]
    )
    await sign_in(page, token)
    await open_thread(page, thread["id"], "Fork source")
    await messages(page, "assistant").first.get_by_role("button", name="Fork from here", exact=True).click()
    await expect(page).not_to_have_url(thread_address(thread["id"]))
    await expect(page).to_have_url(re.compile(r"#/threads/[^/]+$"))
    fork_id = opened_thread_id(page)
    await expect(messages(page, "assistant")).to_have_count(1)
    await expect(messages(page, "user")).to_contain_text("First?")
    assert [m["content"] for m in await store.path(fork_id)] == ["First?", "One."]
    assert len(await store.path(thread["id"])) == 4


async def test_structured_parts_and_a_stopped_reply_are_shown_in_words(page: Page, token: str, store: Store) -> None:
    thread = await store.create_thread("Weather")
    await store.append(thread["id"], "Weather in Porto?")
    tool_call = {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": '{"city": "Porto"}'}
    await store.append(thread["id"], [{"type": "text", "text": "Let me look."}, tool_call], role="assistant")
    stopped = await store.append(thread["id"], "Sunny, with a cha", role="assistant", status="in_progress")
    await store.call("PATCH", f"/api/threads/{thread['id']}/messages/{stopped['id']}", json={"status": "incomplete"})
    await sign_in(page, token)
    await open_thread(page, thread["id"], "Weather")
    answers = messages(page, "assistant")
    await expect(answers).to_have_count(2)
    await expect(answers.first).to_contain_text("Let me look.")
    await expect(answers.first).to_contain_text("Tool call: get_weather")
    await expect(answers.last).to_contain_text("Sunny, with a cha")
    await expect(answers.last).to_contain_text("Stopped")
    await expect(answers.last).not_to_contain_text("Writing…")
