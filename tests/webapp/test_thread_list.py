"""The thread list: pages of 20 load as the end of the list scrolls into view until all are shown, each
once; "Show" filters archived threads; live events add, rename and remove threads in the open list."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Page, Request, expect

from tests.webapp.ui import Store, sign_in, thread_links, threads

THREADS = 45


async def test_scrolling_the_list_shows_every_thread_once(page: Page, token: str, store: Store) -> None:
    titles = [f"Trip number {n:02}" for n in range(1, THREADS + 1)]
    for title in titles:  # one by one: the list is newest first, so the last created is on top
        await store.create_thread(title)
    pages: list[dict[str, list[str]]] = []

    def listed_page(request: Request) -> None:
        url = urlsplit(request.url)
        if url.path == "/api/threads" and request.method == "GET":
            pages.append(parse_qs(url.query))

    page.on("request", listed_page)
    await sign_in(page, token)
    links = thread_links(page)
    await expect(links.first).to_have_text(titles[-1])
    await expect(links).to_have_count(20)  # one page: the rest waits for the end of the list to be seen
    shown = 20
    while shown < THREADS:
        await links.last.scroll_into_view_if_needed()
        await page.mouse.wheel(0, 2_000)
        await expect(links).not_to_have_count(shown)  # the next page arrived
        shown = await links.count()
    assert await links.all_inner_texts() == list(reversed(titles))
    listed = [query for query in pages if query.get("limit") != ["1"]]  # not the sign-in's check
    assert len(listed) >= 3 and all(query.get("limit", ["20"]) == ["20"] for query in listed), pages
    assert sum("cursor" in query for query in listed) >= 2, "the later pages follow the cursor"
    await expect(threads(page).get_by_role("button", name="Load more", exact=True)).to_have_count(0)


async def test_load_more_fetches_the_next_page_for_keyboard_users(page: Page, token: str, store: Store) -> None:
    for n in range(25):
        await store.create_thread(f"Keyboard {n:02}")
    await sign_in(page, token)
    links = thread_links(page)
    await expect(links.first).to_have_text("Keyboard 24")
    await expect(links).to_have_count(20)
    more = threads(page).get_by_role("button", name="Load more", exact=True)
    await expect(more).to_have_count(1)  # while there is more
    await more.focus()  # focusing may bring the list's end into view too: either loads the page, once
    await page.keyboard.press("Enter")
    await expect(links).to_have_count(25)
    assert len(set(await links.all_inner_texts())) == 25
    await expect(more).to_have_count(0)


async def test_show_filters_active_archived_and_all_threads(page: Page, token: str, store: Store) -> None:
    kept = await store.create_thread("Kept open")
    for title in ("Old plan", "Older plan"):
        archived = await store.create_thread(title)
        await store.call("DELETE", f"/api/threads/{archived['id']}")
    await sign_in(page, token)
    links = thread_links(page)
    await expect(links).to_have_text([kept["title"]])
    show = page.get_by_label("Show")
    await show.select_option(label="Archived")
    await expect(links).to_have_text(["Older plan", "Old plan"])
    await show.select_option(label="All")
    await expect(links).to_have_count(3)
    await show.select_option(label="Active")
    await expect(links).to_have_text([kept["title"]])


async def test_threads_made_renamed_and_deleted_elsewhere_change_the_open_list(
    page: Page, token: str, store: Store
) -> None:
    first = await store.create_thread("First")
    await sign_in(page, token)
    links = thread_links(page)
    await expect(links).to_have_text(["First"])
    await expect(page.get_by_role("status")).to_contain_text("Live")
    await store.create_thread()
    await expect(links).to_have_text(["Untitled", "First"])
    await store.patch(first["id"], title="First, renamed")
    await expect(links.filter(has_text="First, renamed")).to_have_count(1)
    await expect(links).to_have_count(2)
    await store.call("DELETE", f"/api/threads/{first['id']}", 204, params={"permanent": "true"})
    await expect(links).to_have_text(["Untitled"])
