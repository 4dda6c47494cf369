"""Serving the web app: `/app` redirects to `/app/`, and `/app/<file>` is a file of static/ (index.html for
`/app/`). No token is needed (API.md v2). Every file goes out with a strict Content-Security-Policy and is
revalidated on each use (`Cache-Control: no-cache` with its ETag), so a new deploy never runs stale JS."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
APP_PATH = "/app"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-cache"),
]

router = APIRouter(include_in_schema=False)


@router.get(APP_PATH)
async def app_without_slash(request: Request) -> RedirectResponse:
    # The page's relative URLs (app.js, ../api/…) resolve against /app/, never /app. A path-only Location:
    # nothing taken from the Host header, so the redirect cannot be aimed at another host.
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return RedirectResponse(f"{root}{APP_PATH}/", status_code=308)


class _SecurityHeaders:
    """Adds HEADERS to every response of the wrapped app (a 304 included: a revalidated page keeps its CSP)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


def assets() -> ASGIApp:
    """The app mounts this at APP_PATH. StaticFiles answers ETag/Last-Modified and 304s, refuses paths out of
    static/, and raises 404/405 as HTTPException, which the app's handlers answer as problem details."""
    return _SecurityHeaders(StaticFiles(directory=STATIC, html=True))
