"""What both clients share: a request described as data (`Call`), the per-call attempt loop as a pure state
machine (`Attempts`: what to send, and after each answer whether to return, wait and retry, or re-read), and the
session state every request reads (`Session`: the token and the read-your-writes position).

The sync and async clients only send what `Attempts` says and sleep as long as it says."""

from __future__ import annotations

import enum
import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

import httpx
from pydantic import BaseModel

from threadstore_client import _retry
from threadstore_client._retry import RetryPolicy, Safety
from threadstore_client.errors import APIConnectionError, APIError, NotFoundError, error_for

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


class _NotGiven(enum.Enum):
    NOT_GIVEN = "NOT_GIVEN"

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = _NotGiven.NOT_GIVEN
"""An argument left out (where `None` means something: `title=None` clears a title)."""
NotGiven = _NotGiven


@dataclass(frozen=True)
class Confirm(Generic[T]):
    """After a 412 on a retry: read `call`, and if `landed` says the first try did it, that is the answer."""

    call: Call[T]
    landed: Callable[[T], bool]


@dataclass(frozen=True, kw_only=True)
class Call(Generic[T]):
    """One request of the API: what to send, how to read its answer and how safe it is to repeat."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    safety: Safety
    params: list[tuple[str, str]] = field(default_factory=list)
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    expect: frozenset[int] = frozenset({200})
    # A 404 answered to a retry of a delete: the first try deleted it and its answer was lost.
    gone_on_retry: Callable[[], T] | None = None
    confirm: Confirm[T] | None = None
    retry: bool = True

    @property
    def writes(self) -> bool:
        return self.method != "GET"


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    params: httpx.QueryParams
    headers: dict[str, str]
    content: bytes | None


@dataclass(frozen=True)
class Done(Generic[T]):
    value: T


@dataclass(frozen=True)
class Wait:
    seconds: float


class Session:
    """The caller's token and the newest `X-Read-After` any write answered with (docs/api.md "Read replicas"),
    sent back on every read so a read served by a replica sees this client's writes. Thread-safe.

    `token` may be a function, asked before each request: an event stream ends at its token's `exp`, and its
    reconnect then carries a fresh one."""

    def __init__(self, token: str | Callable[[], str]) -> None:
        self.token = token
        self._read_after: str | None = None
        self._lock = threading.Lock()

    @property
    def read_after(self) -> str | None:
        return self._read_after

    def headers(self, call: Call[Any]) -> dict[str, str]:
        token = self.token() if callable(self.token) else self.token
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if not call.writes and self._read_after is not None:
            headers["X-Read-After"] = self._read_after
        headers.update(call.headers)
        return headers

    def saw(self, response: httpx.Response) -> None:
        position = response.headers.get("x-read-after")
        if position is None or response.request.method == "GET":
            return
        with self._lock:
            if self._read_after is None or _wal(position) > _wal(self._read_after):
                self._read_after = position


def _wal(position: str) -> int:
    """A PostgreSQL WAL position `16/B374D848` as a number; an unreadable one as -1 (never kept over another)."""
    high, _, low = position.partition("/")
    try:
        return (int(high, 16) << 32) + int(low, 16)
    except ValueError:
        return -1


class Attempts(Generic[T]):
    """The attempts of one call. Its `Idempotency-Key` (if any) is in `call.headers`, so every attempt sends
    the same one."""

    def __init__(self, call: Call[T], policy: RetryPolicy) -> None:
        self.call = call
        self.policy = policy if call.retry else RetryPolicy.never()
        self.made = 0

    def request(self, session: Session) -> Request:
        self.made += 1
        call = self.call
        content = None if call.body is None else json.dumps(call.body, ensure_ascii=False).encode()
        headers = session.headers(call)
        if content is not None:
            headers["Content-Type"] = "application/json"
        return Request(call.method, call.path, httpx.QueryParams(tuple(call.params)), headers, content)

    def after_error(self, error: APIConnectionError) -> Wait:
        """The wait before the next try, or `error` raised."""
        wait = _retry.after_transport_error(self.policy, self.call.safety, self.made, error)
        if wait is None:
            raise error
        return Wait(wait)

    def after_response(self, response: httpx.Response) -> Done[T] | Wait | Confirm[T]:
        call = self.call
        if response.status_code in call.expect:
            return Done(call.parse(response))
        error = problem(response)
        if self.made > 1:
            if isinstance(error, NotFoundError) and call.gone_on_retry is not None:
                return Done(call.gone_on_retry())
            if error.status == 412 and call.confirm is not None:
                return call.confirm
        wait = _retry.after_status(self.policy, call.safety, self.made, error.status, error.reason, error.retry_after)
        if wait is None:
            raise error
        return Wait(wait)


def problem(response: httpx.Response) -> APIError:
    """The typed error of an error answer (its problem details; a body that is not one counts as empty)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    return error_for(response.status_code, body if isinstance(body, dict) else {}, response.headers)


def model(kind: type[M]) -> Callable[[httpx.Response], M]:
    def parse(response: httpx.Response) -> M:
        return kind.model_validate_json(response.content)

    return parse


def nothing(response: httpx.Response) -> None:
    return None


def wire(value: Any) -> Any:
    """A request value as JSON data: models dumped whole (a part's `type` included), as the server returns them."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [wire(item) for item in value]
    if isinstance(value, Mapping):
        return {key: wire(item) for key, item in value.items()}
    return value


def given(**values: Any) -> dict[str, Any]:
    """The arguments the caller gave (NOT_GIVEN dropped) as a JSON body."""
    return {name: wire(value) for name, value in values.items() if value is not NOT_GIVEN}


def query(**values: Any) -> list[tuple[str, str]]:
    return [(name, str(value)) for name, value in values.items() if value is not None]
