"""The client's exceptions. Everything it raises on purpose is a `ThreadstoreError`:

- `APIError` and its subclasses: the server answered with a problem (RFC 9457); every field of the problem is
  an attribute (`status`, `type`, `title`, `detail`, `errors`, `reason`, `request_id`, `length`).
- `APIConnectionError` (and `APITimeoutError`): no answer — the transport failed. `sent` says whether the
  request may have reached the server (False: it certainly did not).

`error_for` is the one mapping from a status (and a 409's `reason`) to a class."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class ThreadstoreError(Exception):
    """Base of every error this client raises."""


class APIConnectionError(ThreadstoreError):
    """The request got no answer (connection refused or reset, a truncated response, ...)."""

    def __init__(self, message: str, *, sent: bool) -> None:
        super().__init__(message)
        self.sent = sent


class APITimeoutError(APIConnectionError):
    """The server did not answer within the client's timeout."""


class APIError(ThreadstoreError):
    """A problem answered by the server. `problem` is the body as received."""

    def __init__(self, status: int, problem: Mapping[str, Any], headers: Mapping[str, str]) -> None:
        self.status = status
        self.problem = dict(problem)
        self.headers = dict(headers)
        self.type: str | None = _str(problem.get("type"))
        self.title: str | None = _str(problem.get("title"))
        self.detail: str | None = _str(problem.get("detail"))
        self.reason: str | None = _str(problem.get("reason"))
        errors = problem.get("errors")
        self.errors: list[dict[str, Any]] = list(errors) if isinstance(errors, list) else []
        self.request_id: str | None = _str(problem.get("request_id")) or headers.get("x-request-id")
        length = problem.get("length")
        self.length: int | None = length if isinstance(length, int) else None
        super().__init__(self._message())

    def _message(self) -> str:
        text = f"{self.status} {self.title or ''}".strip()
        if self.detail:
            text += f": {self.detail}"
        if self.reason:
            text += f" (reason: {self.reason})"
        if self.errors:
            text += " " + "; ".join(f"{'.'.join(map(str, e.get('loc', [])))}: {e.get('msg')}" for e in self.errors)
        if self.request_id:
            text += f" [request {self.request_id}]"
        return text

    @property
    def retry_after(self) -> float | None:
        """`Retry-After` in seconds, when the answer carried it as a number."""
        value = self.headers.get("retry-after")
        try:
            return max(0.0, float(value)) if value is not None else None
        except ValueError:
            return None


class BadRequestError(APIError):
    """400: e.g. a malformed Idempotency-Key or Last-Event-ID."""


class AuthenticationError(APIError):
    """401: the token is missing, malformed, expired or badly signed."""


class NotFoundError(APIError):
    """404: not there, or not the caller's (the two are indistinguishable)."""


class ConflictError(APIError):
    """409; `reason` says which: in-flight, archived, version, offset, state (or expired for events)."""


class InFlightError(ConflictError):
    """409 `in-flight`: the same Idempotency-Key is still being processed."""


class ArchivedError(ConflictError):
    """409 `archived`: the thread is archived, and read-only."""


class VersionConflictError(ConflictError):
    """409 `version`: the thread moved while the server worked (auto-rename)."""


class OffsetConflictError(ConflictError):
    """409 `offset`: a delta's offset is not the stored length (`length`)."""


class StateConflictError(ConflictError):
    """409 `state`: the message's status forbids the change."""


class EventsExpiredError(ConflictError):
    """409 `expired`: the events after `Last-Event-ID` were pruned; reload the state, then stream afresh."""


class PreconditionFailed(APIError):
    """412: `If-Match` named a version the thread no longer has (someone else changed it)."""


class PayloadTooLargeError(APIError):
    """413: the request body is over the server's limit."""


class UnsupportedMediaTypeError(APIError):
    """415."""


class ValidationError(APIError):
    """422: the request is not valid; `errors` lists each problem's `loc` and `msg`."""


class PreconditionRequiredError(APIError):
    """428: the server requires `If-Match` on thread PATCHes."""


class RateLimitError(APIError):
    """429: a configured rate limit was exceeded (`retry_after`)."""


class InternalServerError(APIError):
    """500."""


class ServiceUnavailableError(APIError):
    """503: the database is unreachable or busy, or the server is shutting down (`retry_after`)."""


_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    412: PreconditionFailed,
    413: PayloadTooLargeError,
    415: UnsupportedMediaTypeError,
    422: ValidationError,
    428: PreconditionRequiredError,
    429: RateLimitError,
    500: InternalServerError,
    503: ServiceUnavailableError,
}
_BY_REASON: dict[str, type[ConflictError]] = {
    "in-flight": InFlightError,
    "archived": ArchivedError,
    "version": VersionConflictError,
    "offset": OffsetConflictError,
    "state": StateConflictError,
    "expired": EventsExpiredError,
}


def error_for(status: int, problem: Mapping[str, Any], headers: Mapping[str, str]) -> APIError:
    kind: type[APIError] = _BY_STATUS.get(status, APIError)
    if status == 409:
        kind = _BY_REASON.get(str(problem.get("reason")), ConflictError)
    return kind(status, problem, headers)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
