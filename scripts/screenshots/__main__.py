"""`python -m scripts.screenshots [--out docs/images]`: starts a threadstore server on a throwaway SQLite
database, seeds a realistic conversation through the API (alternative answers, a reply still streaming,
threads to search), and has the distribution's Chromium (the browser tests' own, tests/webapp/chromium.py)
photograph the main screens into PNGs. Run by hand when the page changes; the README shows the results.
The server is the test harness's `ServeProcess`: it dies with this script, however the script ends."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, async_playwright, expect
from tests.harness.databases import JWT_SECRET
from tests.harness.processes import ServeProcess
from tests.webapp.chromium import find_chromium, launch_args

from threadstore.auth import issue_token

USER = "alice"
LIMIT_BYTES = 300_000  # each image, so the README stays light
QUESTION = "Lisbon trip with two kids in March: can you plan three days for us?"
ANSWERS = (
    "Day 1: Alfama and the castle in the morning, tram 28 down to Baixa, custard tarts in Belém at four.",
    "Day 1: the Oceanário when it opens, lunch by the river at Parque das Nações, the cable car at sunset. "
    "Day 2: Belém — the tower, the monastery and the tarts. Day 3: a train to Sintra and the Pena palace.",
    "Keep it slow: one neighbourhood a day, with a playground and a long lunch in each.",
)
FOLLOW_UP = "The kids love trams. Which line should we ride, and when is it quiet?"
STREAMING = "Ride tram 28 from Martim Moniz before nine: it is the old yellow one, and early in the"
OTHER_THREADS = (
    ("Packing list for a week by the sea", "What should we pack for a week in Ericeira with a toddler?"),
    ("Porto or Coimbra for a day trip?", "From Lisbon, is Porto or Coimbra the better day trip by train?"),
    ("Budget for the Lisbon trip", "Our budget is 1,800 euros for four days in Lisbon: is that enough?"),
    ("Tram 15 or the train to Belém?", "Should we take tram 15 or the train to Belém with a pushchair?"),
    ("Vegetarian places in Lisbon", "Can you name three vegetarian places near Chiado?"),
    ("Learning Portuguese phrases", "Teach me ten phrases for the market."),
)


class Seeder:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def call(self, method: str, url: str, **body: Any) -> Any:
        response = await self.client.request(method, url, json=body or None)
        response.raise_for_status()
        return response.json()

    async def seed(self) -> str:
        """Every thread of the screenshots; the id of the one with alternatives and a reply streaming."""
        for title, question in OTHER_THREADS:
            await self.call(
                "POST",
                "/api/threads",
                title=title,
                messages=[
                    {"role": "user", "content": question},
                    {"role": "assistant", "content": "Here is what I would do.", "model": "demo"},
                ],
            )
        thread = await self.call(
            "POST",
            "/api/threads",
            title="Lisbon with kids in March",
            messages=[{"role": "user", "content": QUESTION}, {"role": "assistant", "content": ANSWERS[0]}],
        )
        messages = f"/api/threads/{thread['id']}/messages"
        question = (await self.call("GET", messages))["data"][0]
        answers = [thread["current_message_id"]]
        for text in ANSWERS[1:]:  # two regenerated answers: the alternatives < 2/3 >
            answers.append(
                (await self.call("POST", messages, role="assistant", content=text, parent_id=question["id"]))["id"]
            )
        await self.call("PATCH", f"/api/threads/{thread['id']}", current_message_id=answers[1])
        await self.call("POST", messages, content=FOLLOW_UP)
        reply = await self.call("POST", messages, role="assistant", content="", status="in_progress", model="demo")
        await self.call("POST", f"{messages}/{reply['id']}/deltas", offset=0, text=STREAMING)
        return str(thread["id"])


async def sign_in(page: Page, token: str) -> None:
    await page.goto("/app/")
    await page.get_by_label("Access token").fill(token)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_role("navigation", name="Threads")).to_be_visible()


async def shoot(out: Path, chromium: str) -> list[Path]:
    with tempfile.TemporaryDirectory(prefix="threadstore-screenshots-") as workdir:
        async with ServeProcess(Path(workdir), jwt_secret=JWT_SECRET) as server:
            token = issue_token(JWT_SECRET, USER, None)
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=server.base_url, headers=headers) as client:
                thread_id = await Seeder(client).seed()
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=chromium, args=launch_args())
                try:
                    desktop = await browser.new_context(
                        base_url=server.base_url, viewport={"width": 1280, "height": 980}, locale="en-US"
                    )
                    page = await desktop.new_page()
                    shots = [out / "token-screen.png"]
                    await page.goto("/app/")
                    await page.get_by_label("Access token").fill("paste-your-token-here")
                    await page.screenshot(path=shots[-1])

                    await sign_in(page, token)
                    await page.get_by_label("Search threads").fill("lisbon")
                    await expect(page.get_by_role("navigation", name="Threads").locator("mark").first).to_be_visible()
                    shots.append(out / "search.png")
                    await page.screenshot(path=shots[-1])

                    await page.get_by_label("Search threads").fill("")
                    await expect(page.get_by_role("navigation", name="Threads").locator("mark")).to_have_count(0)
                    await page.goto(f"/app/#/threads/{thread_id}")
                    main = page.get_by_role("main")
                    await expect(main.get_by_text("2/3")).to_be_visible()
                    await expect(main.get_by_text("Writing…")).to_be_visible()
                    shots.append(out / "thread.png")
                    await page.screenshot(path=shots[-1])

                    phone = await browser.new_context(
                        base_url=server.base_url, viewport={"width": 375, "height": 740}, locale="en-US"
                    )
                    page = await phone.new_page()
                    await sign_in(page, token)
                    await page.goto(f"/app/#/threads/{thread_id}")
                    await expect(page.get_by_role("main").get_by_text("Writing…")).to_be_visible()
                    shots.append(out / "phone.png")
                    await page.screenshot(path=shots[-1])
                finally:
                    await browser.close()
    return shots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--out", type=Path, default=Path("docs/images"))
    options = parser.parse_args()
    chromium = find_chromium()
    if chromium is None:
        print("no Chromium: apt-get install chromium, or set THREADSTORE_CHROMIUM", file=sys.stderr)
        return 1
    options.out.mkdir(parents=True, exist_ok=True)
    shots = asyncio.run(shoot(options.out, chromium))
    too_big = False
    for shot in shots:
        size = shot.stat().st_size
        too_big |= size > LIMIT_BYTES
        print(f"{shot}: {size // 1000} KB")
    if too_big:
        print(f"an image is over {LIMIT_BYTES // 1000} KB", file=sys.stderr)
    return 1 if too_big else 0


if __name__ == "__main__":
    sys.exit(main())
