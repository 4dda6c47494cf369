"""What a page did wrong while a test ran: console errors (CSP violations included: Chromium reports them
there), uncaught exceptions, failed requests, and any request to a host other than the server — the app must
work without another host. A test that provokes an error on purpose says which HTTP status it expects."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from playwright.async_api import BrowserContext, ConsoleMessage, Request

# Chromium logs every fetch answered with an error status to the console, as this.
_STATUS_LINE = re.compile(r"Failed to load resource: the server responded with a status of (\d{3})")
# A request the page itself gave up (a navigation, a reload, a closed EventSource) is not a failure.
_ABORTED = "net::ERR_ABORTED"
_OFFLINE = "net::ERR_INTERNET_DISCONNECTED"
# A killed server cuts its open streams (an unfinished chunked body) and refuses connections until it is back.
_SERVER_DOWN = (
    "net::ERR_CONNECTION_REFUSED",
    "net::ERR_CONNECTION_RESET",
    "net::ERR_CONNECTION_CLOSED",
    "net::ERR_EMPTY_RESPONSE",
    "net::ERR_INCOMPLETE_CHUNKED_ENCODING",
)


@dataclass
class PageWatch:
    """Collects the problems of every page of one browser context."""

    origin: str
    problems: list[str] = field(default_factory=list)
    expected_statuses: set[int] = field(default_factory=set)
    server_down_expected: bool = False
    offline_expected: bool = False

    def attach(self, context: BrowserContext) -> None:
        context.on("console", self._console)
        context.on("weberror", lambda error: self.problems.append(f"uncaught: {error.error}"))
        context.on("request", self._request)
        context.on("requestfailed", self._request_failed)

    def expect_status(self, *statuses: int) -> None:
        """The test makes the server answer these on purpose: the console lines about them are expected."""
        self.expected_statuses.update(statuses)

    def expect_server_down(self) -> None:
        """The test stops the server: refused connections while it is down are expected."""
        self.server_down_expected = True

    def expect_offline(self) -> None:
        """The test takes the browser off the network: its refused requests are expected."""
        self.offline_expected = True

    def _expected_failure(self, text: str) -> bool:
        return (self.server_down_expected and any(error in text for error in _SERVER_DOWN)) or (
            self.offline_expected and _OFFLINE in text
        )

    def _console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        status = _STATUS_LINE.search(message.text)
        if status and int(status.group(1)) in self.expected_statuses:
            return
        if self._expected_failure(message.text):
            return
        self.problems.append(f"console error: {message.text} at {message.location.get('url')}")

    def _request(self, request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and f"{parts.scheme}://{parts.netloc}" != self.origin:
            self.problems.append(f"request to another host: {request.method} {request.url}")

    def _request_failed(self, request: Request) -> None:
        failure = request.failure or ""
        if _ABORTED in failure:
            return
        if self._expected_failure(failure):
            return
        self.problems.append(f"request failed: {request.method} {request.url}: {failure}")
