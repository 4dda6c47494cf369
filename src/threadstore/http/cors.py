"""CORS for the listed origins (API.md "In a browser"), by Starlette's CORSMiddleware."""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp

METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]
REQUEST_HEADERS = [
    "Authorization",
    "Content-Type",
    "Idempotency-Key",
    "If-Match",
    "If-None-Match",
    "Last-Event-ID",
    "X-Request-ID",
    "X-Read-After",  # read-your-writes through a replica (docs/api.md "Read replicas")
]
EXPOSED = ["ETag", "Location", "Retry-After", "X-Request-ID", "Idempotent-Replayed", "X-Title-Source", "X-Read-After"]
PREFLIGHT_MAX_AGE = 600


def cors(app: ASGIApp, origins: list[str]) -> ASGIApp:
    """`app` answering preflights from `origins` and marking its responses to them: credentials allowed (the
    events cookie), the contract's methods and request headers, its response headers exposed."""
    return CORSMiddleware(
        app,
        allow_origins=origins,
        allow_credentials=True,
        allow_methods=METHODS,
        allow_headers=REQUEST_HEADERS,
        expose_headers=EXPOSED,
        max_age=PREFLIGHT_MAX_AGE,
    )
