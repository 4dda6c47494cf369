"""The search box: results replace the list, with the server's snippets whose matched words are real <mark>
elements, and whose other markup — a message that contains `<script>` — is shown as text, never run."""

from __future__ import annotations

from playwright.async_api import Dialog, Page, expect

from tests.webapp.ui import Store, messages, open_thread, question_and_answer, sign_in, thread_links, threads

SCRIPT = '<script>document.title="pwned"</script><img src=x onerror="document.title=\'pwned\'">'


async def test_search_shows_snippets_with_marked_words_and_markup_as_text(page: Page, token: str, store: Store) -> None:
    await store.create_thread("Birds", question_and_answer("Where do pelicans nest?", "On quiet islands."))
    hostile = await store.create_thread("Markup", question_and_answer(f"pelican {SCRIPT}", "Noted."))
    await store.create_thread("Unrelated", question_and_answer("Trains to Porto?", "Hourly."))
    dialogs: list[str] = []

    async def refuse(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.dismiss()

    page.on("dialog", refuse)
    await sign_in(page, token)
    await expect(thread_links(page)).to_have_count(3)
    box = page.get_by_label("Search threads")
    await box.fill("pelican")
    await box.press("Enter")
    results = threads(page)
    await expect(results.get_by_text("Birds")).to_be_visible()
    await expect(results.get_by_text("Markup", exact=True)).to_be_visible()
    await expect(results.get_by_text("Unrelated")).to_have_count(0)
    marks = results.locator("mark")
    await expect(marks.first).to_be_visible()
    marked = await marks.all_inner_texts()
    assert len(marked) >= 2 and all(text.lower().startswith("pelican") for text in marked), marked
    await expect(results.get_by_text(SCRIPT, exact=False)).to_be_visible()  # the markup, as text
    assert await results.locator("script, img").count() == 0
    assert await page.title() != "pwned" and not dialogs

    await box.fill("")
    await expect(thread_links(page)).to_have_count(3)

    await open_thread(page, hostile["id"], "Markup")
    await expect(messages(page, "user")).to_contain_text(SCRIPT)
    assert await page.title() != "pwned" and not dialogs


async def test_search_as_you_type_finds_by_prefix_without_pressing_enter(page: Page, token: str, store: Store) -> None:
    await store.create_thread("Ferries", question_and_answer("When do the ferries to Cacilhas run?", "Often."))
    await store.create_thread("Other", question_and_answer("Anything else?", "No."))
    await sign_in(page, token)
    await page.get_by_label("Search threads").press_sequentially("cacil")
    await expect(threads(page).get_by_text("Ferries")).to_be_visible()
    await expect(threads(page).get_by_text("Other")).to_have_count(0)
    await expect(threads(page).locator("mark").first).to_have_text("Cacilhas", ignore_case=True)
