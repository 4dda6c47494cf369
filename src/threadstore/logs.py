"""Logging set-up: one line per record, always with the request id."""

from __future__ import annotations

import logging

from threadstore.http.request_id import RequestIdLogFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s [request_id=%(request_id)s] %(message)s"


def configure(level: str) -> None:
    handler = logging.StreamHandler()
    handler.addFilter(RequestIdLogFilter())
    handler.setFormatter(logging.Formatter(FORMAT))
    root = logging.getLogger("threadstore")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
