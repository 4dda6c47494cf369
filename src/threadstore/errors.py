"""Domain errors, and the one mapping from them (and from everything else) to RFC 9457 problem+json."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from threadstore.http.request_id import current_request_id

log = logging.getLogger("threadstore.errors")

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """A failure the client can act on. `detail` is written for clients: never put driver text in it."""

    status: int = 500
    slug: str = "internal-error"

    def __init__(self, detail: str | None = None, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail or HTTPStatus(self.status).phrase)
        self.detail = detail or HTTPStatus(self.status).phrase
        self.headers = dict(headers or {})


class BadRequest(DomainError):
    status, slug = 400, "bad-request"


class Unauthorized(DomainError):
    status, slug = 401, "unauthorized"

    def __init__(self, detail: str = "A valid bearer token is required.") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class NotFound(DomainError):
    status, slug = 404, "not-found"


def thread_not_found() -> NotFound:
    # One message for "missing" and "someone else's": the two must be indistinguishable.
    return NotFound("No thread with this id.")


class Conflict(DomainError):
    """`reason` tells clients conflicts apart (API.md, version 2): `in-flight` (an Idempotency-Key's first request
    is still running), `archived`, `version` (the thread moved), `offset`, `state`; and `expired` (a resume past
    the kept events: docs/api.md)."""

    status, slug = 409, "conflict"

    def __init__(self, detail: str, *, reason: str, length: int | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.length = length  # `offset`: the stored length, where the writer resumes


class PreconditionFailed(DomainError):
    status, slug = 412, "precondition-failed"


class PreconditionRequired(DomainError):
    status, slug = 428, "precondition-required"


class Unprocessable(DomainError):
    status, slug = 422, "validation-error"

    def __init__(self, detail: str, *, errors: Sequence[Mapping[str, Any]] = ()) -> None:
        super().__init__(detail)
        self.errors = [dict(e) for e in errors]


class ServiceUnavailable(DomainError):
    status, slug = 503, "service-unavailable"

    def __init__(self, detail: str = "The database is unavailable; retry shortly.", retry_after: int = 1) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class InternalError(DomainError):
    status, slug = 500, "internal-error"


class StreamCutOff(Exception):
    """Raised out of a streamed body that failed after its status line went out: the server can then only end
    the connection, which the client sees as a truncated transfer. Logged where it was raised."""


def problem_response(
    status: int,
    detail: str,
    *,
    slug: str | None = None,
    headers: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Response:
    title = HTTPStatus(status).phrase
    body: dict[str, Any] = {
        "type": f"urn:threadstore:problem:{slug or _default_slug(status)}",
        "title": title,
        "status": status,
        "detail": detail,
        "request_id": current_request_id(),
    }
    if extra:
        body.update(extra)
    return Response(orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


def _default_slug(status: int) -> str:
    return HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")


def _loc(loc: Sequence[Any]) -> list[Any]:
    # Pydantic reports where a value failed; keep the path, drop internals such as function names.
    return [part for part in loc if isinstance(part, str | int)]


def validation_errors(raw: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    # Only location and message: pydantic's "input" and "ctx" would echo request data and internals back.
    return [{"loc": _loc(e.get("loc", ())), "msg": str(e.get("msg", "invalid"))} for e in raw]


async def _domain_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    if error.status >= 500:
        log.warning("request failed: %s %s", error.slug, error.detail)
    else:
        log.info("request refused: %d %s", error.status, error.slug)
    extra: dict[str, Any] | None = None
    if isinstance(error, Unprocessable):
        extra = {"errors": error.errors}
    elif isinstance(error, Conflict):
        extra = {"reason": error.reason}
        if error.length is not None:
            extra["length"] = error.length
    return problem_response(error.status, error.detail, slug=error.slug, headers=error.headers, extra=extra)


async def _validation_error(_: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    return problem_response(
        422,
        "The request is not valid.",
        slug="validation-error",
        extra={"errors": validation_errors(error.errors())},
    )


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    unparsable = _unparsable_json(error)
    if unparsable is not None:
        return problem_response(
            422,
            "The request is not valid.",
            slug="validation-error",
            extra={"errors": [{"loc": ["body"], "msg": unparsable}]},
        )
    detail = HTTPStatus(error.status_code).phrase
    headers = dict(error.headers or {})
    if error.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return problem_response(error.status_code, detail, headers=headers)


def _unparsable_json(error: StarletteHTTPException) -> str | None:
    """Why a JSON body could not be parsed, when that is what this error is. FastAPI turns the parser's
    JSONDecodeError into a 422 but any other failure of it into a bare 400, raised from that failure:
    a body that is not UTF-8, nested deeper than the parser recurses, or an integer past Python's limit on
    digits. All are malformed JSON to a client (422 in docs/api.md)."""
    cause = error.__cause__
    if error.status_code != 400:
        return None
    if isinstance(cause, UnicodeDecodeError):
        return "the body is not valid UTF-8"
    if isinstance(cause, RecursionError):
        return "JSON is nested too deeply"
    if isinstance(cause, ValueError):
        return "JSON holds a number too long to parse"
    return None


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    # Starlette names only the first route whose path matched, but FastAPI has one route per method:
    # RFC 9110 requires a 405's Allow to list every method the resource supports. Each method is probed
    # on a fresh scope because matching may annotate the scope it is given.
    def supports(method: str) -> bool:
        scope = {
            "type": "http",
            "path": request.scope["path"],
            "root_path": request.scope.get("root_path", ""),
            "method": method,
            "headers": [],
        }
        return any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes)

    return ", ".join(m for m in _METHODS if supports(m))


async def _unhandled(_: Request, error: Exception) -> Response:
    # The full traceback goes to the log (with the request id); the client gets nothing of it. A stream cut off
    # was logged with its cause already, and its answer can no longer be sent.
    if not isinstance(error, StreamCutOff):
        log.error("unhandled error", exc_info=error)
    return problem_response(500, "An internal error occurred.", slug="internal-error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unhandled)
