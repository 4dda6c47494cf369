"""The request id: echoed from a valid incoming `X-Request-ID`, else made; available to logs and errors."""

from __future__ import annotations

import logging
import re
import secrets
from contextvars import ContextVar

_request_id: ContextVar[str] = ContextVar("threadstore_request_id", default="-")
# An incoming id is echoed only if it is short and plain, so it cannot inject into headers or logs.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,128}$"
_VALID = re.compile(REQUEST_ID_PATTERN)


def current_request_id() -> str:
    return _request_id.get()


def set_request_id(value: str) -> None:
    _request_id.set(value)


def choose_request_id(incoming: str | None) -> str:
    if incoming and _VALID.fullmatch(incoming):
        return incoming
    return secrets.token_hex(12)


class RequestIdLogFilter(logging.Filter):
    """Puts the current request id on every log record as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True
