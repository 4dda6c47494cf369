"""Prometheus metrics. Module-level because the client library's registry is process-global."""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram

REQUESTS = Counter(
    "threadstore_http_requests_total",
    "HTTP requests by route template, method and status",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "threadstore_http_request_duration_seconds", "HTTP request duration by route template", ["route", "method"]
)
COMMITS = Counter("threadstore_db_commits_total", "Units of work committed")
ROLLBACKS = Counter("threadstore_db_rollbacks_total", "Units of work rolled back")
TRANSACTION_RETRIES = Counter(
    "threadstore_db_transaction_retries_total", "Units of work re-run after a serialization failure or deadlock"
)
POOL_CHECKED_OUT = Gauge("threadstore_db_pool_checked_out", "Database connections currently checked out")
TITLE_SOURCES = Counter("threadstore_auto_rename_total", "Auto-rename titles by source", ["source"])


def watch_pool(checked_out: Callable[[], int]) -> None:
    POOL_CHECKED_OUT.set_function(lambda: float(checked_out()))
