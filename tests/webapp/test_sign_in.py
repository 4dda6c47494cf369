"""The token screen: a bad token is refused with the request id the server answered; a good one opens the
thread list and stays for the tab's session; "Sign out" forgets it, and so does a token refused once it
expired."""

from __future__ import annotations

import contextlib
import time

import jwt
from playwright.async_api import Page, expect
from playwright.async_api import TimeoutError as PlaywrightTimeout

from tests.harness.processes import ServeProcess
from tests.webapp.ui import TOKEN_KEY, alert, sign_in, threads, until
from tests.webapp.watch import PageWatch
from threadstore.auth import issue_token

TTL_SECONDS = 2


async def test_a_bad_token_is_refused_with_the_request_id_the_server_answered(page: Page, watch: PageWatch) -> None:
    watch.expect_status(401)
    await page.goto("/app/")
    await expect(page.get_by_role("heading", level=1)).to_have_text("threadstore")
    await expect(page.get_by_text("threadstore token --user alice")).to_be_visible()
    await page.get_by_label("Access token").fill("not-a-token")
    async with page.expect_response(lambda r: "/api/threads" in r.url) as answered:
        await page.get_by_role("button", name="Sign in", exact=True).click()
    response = await answered.value
    assert response.status == 401
    request_id = response.headers["x-request-id"]
    assert (await response.json())["request_id"] == request_id
    await expect(alert(page)).to_contain_text(f"Request ID: {request_id}")
    await expect(page.get_by_label("Access token")).to_be_visible()
    await expect(threads(page)).to_have_count(0)
    assert await page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})") is None
    await alert(page).get_by_role("button", name="Dismiss", exact=True).click()
    await expect(alert(page)).to_be_hidden()


async def test_a_good_token_opens_the_thread_list_until_sign_out(page: Page, token: str) -> None:
    await sign_in(page, token)
    assert await page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})") == token
    await page.reload()  # the tab keeps its session
    await expect(threads(page)).to_be_visible()
    await page.get_by_role("button", name="Sign out", exact=True).click()
    await expect(page.get_by_label("Access token")).to_be_visible()
    assert await page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})") is None
    await page.reload()
    await expect(page.get_by_label("Access token")).to_be_visible()


async def test_a_token_that_expires_while_signed_in_leads_back_to_the_token_screen(
    page: Page, server: ServeProcess, user: str, watch: PageWatch
) -> None:
    watch.expect_status(401)
    token = issue_token(server.api.jwt_secret, user, TTL_SECONDS)
    expires: int = jwt.decode(token, options={"verify_signature": False})["exp"]
    await sign_in(page, token)

    async def expired() -> bool:
        return time.time() > expires + 1

    await until(expired, "the token expired", within=TTL_SECONDS + 5)
    screen = page.get_by_label("Access token")
    new_thread = page.get_by_role("button", name="New thread", exact=True)
    # The page may find out by itself first (its event stream's session is refused); else a click tells it.
    with contextlib.suppress(PlaywrightTimeout):
        await new_thread.click(timeout=2_000)
    await expect(screen).to_be_visible()
    assert await page.evaluate(f"sessionStorage.getItem({TOKEN_KEY!r})") is None
