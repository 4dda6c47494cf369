"""Pure ASGI middleware around the whole app: request id, body limits, metrics, and a last-resort 500.

Pure ASGI rather than BaseHTTPMiddleware: it adds no task boundary, so cancellation and context
variables reach the handlers unchanged.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threadstore import metrics
from threadstore.errors import problem_response
from threadstore.http.request_id import choose_request_id, set_request_id

log = logging.getLogger("threadstore.http")

_BODY_METHODS = {b"POST", b"PUT", b"PATCH"}


class BodyTooLarge(HTTPException):
    def __init__(self) -> None:
        super().__init__(status_code=413)


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        request_id = choose_request_id(headers.get(b"x-request-id", b"").decode("latin-1") or None)
        set_request_id(request_id)
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_id(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            early = self._reject_early(scope, headers)
            if early is not None:
                await early(scope, receive, send_with_id)
            else:
                await self.app(scope, self._limited(receive), send_with_id)
        except Exception:
            # Starlette's error middleware has already answered and logged, or the failure came before it.
            if not response_started:
                log.exception("unhandled error before a response was started")
                await problem_response(500, "An internal error occurred.")(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            label = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            metrics.REQUESTS.labels(label, method, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(label, method).observe(time.perf_counter() - started)

    def _reject_early(self, scope: Scope, headers: dict[bytes, bytes]) -> Any:
        if scope.get("method", "").encode() not in _BODY_METHODS:
            return None
        length = headers.get(b"content-length")
        if length is not None:
            try:
                if int(length) > self.max_body_bytes:
                    return problem_response(413, f"The request body exceeds {self.max_body_bytes} bytes.")
            except ValueError:
                return problem_response(400, "Content-Length is not a number.")
        has_body = (length is not None and length != b"0") or b"transfer-encoding" in headers
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if has_body and not (content_type == b"application/json" or content_type.endswith(b"+json")):
            return problem_response(415, "The request body must be application/json.")
        return None

    def _limited(self, receive: Receive) -> Receive:
        remaining = self.max_body_bytes

        async def receive_limited() -> Message:
            nonlocal remaining
            message = await receive()
            if message["type"] == "http.request":
                remaining -= len(message.get("body", b""))
                if remaining < 0:
                    raise BodyTooLarge()
            return message

        return receive_limited


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {k.lower(): v for k, v in scope.get("headers", [])}
