"""The watch that fails a browser test for what its page did wrong does see it: a Content Security Policy
violation, a request to another host, an uncaught exception and an unexpected error status."""

from __future__ import annotations

from playwright.async_api import Browser, expect

from tests.harness.processes import ServeProcess
from tests.webapp.ui import until
from tests.webapp.watch import PageWatch

# What each misdeed leaves in the watch's report.
SIGNS = ("Content Security Policy", "request to another host: GET http://192.0.2.1/", "uncaught: ", "status of 401")
MISBEHAVE = """() => {
  const image = document.createElement("img");
  image.src = "http://192.0.2.1/pixel.png";  // another host, which the app's policy refuses
  document.body.append(image);
  const inline = document.createElement("div");
  inline.setAttribute("onclick", "void 0");  // an inline handler, which the policy refuses to run
  document.body.append(inline);
  inline.click();
  setTimeout(() => { throw new Error("boom"); });
  fetch("/api/threads");  // 401 without a token: a status the test did not expect
}"""


async def test_the_watch_sees_csp_violations_other_hosts_exceptions_and_error_statuses(
    browser: Browser, server: ServeProcess
) -> None:
    watch = PageWatch(server.base_url)
    context = await browser.new_context(base_url=server.base_url)
    try:
        watch.attach(context)
        page = await context.new_page()
        await page.goto("/app/")
        await expect(page.get_by_label("Access token")).to_be_visible()
        assert watch.problems == []
        await page.evaluate(MISBEHAVE)

        async def all_seen() -> bool:
            seen = "\n".join(watch.problems)
            return all(sign in seen for sign in SIGNS)

        await until(all_seen, "the watch saw every misdeed")
    finally:
        await context.close()
