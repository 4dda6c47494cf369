"""Keyboard and screen-reader basics: every control has an accessible name (as Chromium's accessibility tree
computes it), the keyboard focus is visible, the document says its language, text has enough contrast, and
signing in, opening a thread and sending need no mouse."""

from __future__ import annotations

from typing import Any

from playwright.async_api import Locator, Page, expect

from tests.webapp.ui import Store, messages, open_thread, question_and_answer, sign_in

CONTROLS = {"button", "textbox", "searchbox", "combobox", "checkbox", "listbox", "link", "radio", "switch"}

# The focused element's ring: an outline (Chromium's default `auto` included) or a box shadow.
FOCUS_RING = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0;
  const shadow = style.boxShadow && style.boxShadow !== "none";
  return {tag: el.tagName, name: el.getAttribute("aria-label") || el.textContent.trim().slice(0, 40),
          visible: Boolean(outline || shadow)};
}"""


async def unnamed_controls(page: Page) -> list[str]:
    """Controls in the accessibility tree (what a screen reader gets) that have no name."""
    session = await page.context.new_cdp_session(page)
    try:
        tree: dict[str, Any] = await session.send("Accessibility.getFullAXTree")
    finally:
        await session.detach()
    missing = []
    for node in tree["nodes"]:
        role = node.get("role", {}).get("value")
        if node.get("ignored") or role not in CONTROLS:
            continue
        if not str(node.get("name", {}).get("value", "")).strip():
            missing.append(f"{role} (backend node {node.get('backendDOMNodeId')})")
    return missing


async def test_every_control_has_an_accessible_name_on_every_screen(page: Page, token: str, store: Store) -> None:
    thread = await store.create_thread("Named", question_and_answer("Labels?", "All of them."))
    await store.call(
        "PUT", f"/api/threads/{thread['id']}/messages/{thread['current_message_id']}/feedback", json={"rating": "up"}
    )
    await page.goto("/app/")
    assert await page.evaluate("document.documentElement.lang")
    await expect(page.get_by_label("Access token")).to_be_visible()
    assert await unnamed_controls(page) == [], "token screen"
    await sign_in(page, token)
    assert await unnamed_controls(page) == [], "thread list"
    await open_thread(page, thread["id"], "Named")
    await messages(page, "user").get_by_role("button", name="Edit", exact=True).click()
    await page.get_by_role("button", name="Rename", exact=True).click()
    assert await unnamed_controls(page) == [], "thread view, editing"
    assert await page.evaluate("document.documentElement.lang")


async def test_the_keyboard_focus_is_always_visible(page: Page, token: str, store: Store) -> None:
    thread = await store.create_thread("Focus", question_and_answer("Tab?", "Tab."))
    await sign_in(page, token)
    await open_thread(page, thread["id"], "Focus")
    seen = []
    for _ in range(25):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(FOCUS_RING)
        if focused is not None:
            seen.append(focused)
    assert len(seen) >= 10, "Tab should move through the page's controls"
    invisible = [f for f in seen if not f["visible"]]
    assert not invisible, f"no visible focus ring on {invisible}"


# WCAG 2 contrast of every visible text against the first opaque background behind it (ancestors only: the
# app draws no text over images). Large text (24 px, or 18.66 px bold) needs 3:1, the rest 4.5:1.
LOW_CONTRAST = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || !el || !el.checkVisibility()) continue;
    const style = getComputedStyle(el);
    const fg = rgb(style.color).slice(0, 3);
    const [a, b] = [lum(fg), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) low.push(`${node.textContent.trim().slice(0, 30)}: ${ratio.toFixed(2)}`);
  }
  return low;
}"""


async def test_text_has_enough_contrast(page: Page, token: str, store: Store) -> None:
    thread = await store.create_thread("Contrast", question_and_answer("Readable?", "Yes."))
    await page.goto("/app/")
    await expect(page.get_by_label("Access token")).to_be_visible()
    assert await page.evaluate(LOW_CONTRAST) == [], "token screen"
    await sign_in(page, token)
    await open_thread(page, thread["id"], "Contrast")
    assert await page.evaluate(LOW_CONTRAST) == [], "thread view"


async def tab_to(page: Page, target: Locator, presses: int = 60) -> None:
    """Presses Tab until `target` has the focus, as a keyboard user moves through the page."""
    for _ in range(presses):
        await page.keyboard.press("Tab")
        if await target.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{target} was not reached with Tab in {presses} presses")


async def test_a_person_can_sign_in_open_a_thread_and_send_with_the_keyboard_alone(
    page: Page, token: str, store: Store
) -> None:
    thread = await store.create_thread("Keys", question_and_answer("Mouse?", "No need."))
    await page.goto("/app/")
    field = page.get_by_label("Access token")
    await tab_to(page, field)
    await page.keyboard.type(token)
    await tab_to(page, page.get_by_role("button", name="Sign in", exact=True))
    await page.keyboard.press("Enter")
    link = page.get_by_role("navigation", name="Threads").get_by_role("link", name="Keys")
    await tab_to(page, link)
    await page.keyboard.press("Enter")
    await expect(messages(page, "assistant")).to_contain_text("No need.")
    demo = page.get_by_role("checkbox", name="Demo responder")
    await tab_to(page, demo)
    await page.keyboard.press("Space")
    await expect(demo).not_to_be_checked()
    composer = page.get_by_label("Message", exact=True)
    await tab_to(page, composer)
    await page.keyboard.type("Typed without a mouse")
    await page.keyboard.press("Enter")
    await expect(messages(page, "user").filter(has_text="Typed without a mouse")).to_have_count(1)
    assert [m["content"] for m in await store.path(thread["id"])][-1] == "Typed without a mouse"
