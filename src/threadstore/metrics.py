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
POOL_WAITS = Histogram(
    "threadstore_db_pool_wait_seconds",
    "How long units of work that found every pooled connection in use waited for one",
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
POOL_CHECKED_OUT = Gauge("threadstore_db_pool_checked_out", "Database connections currently checked out")
READS = Counter(
    "threadstore_reads_total",
    "Reads that a read replica may serve, by who served them and why (replica: replayed, checked; primary: "
    "replica_behind, replica_unavailable, replica_resting, replica_error, replica_retryable, replica_disconnected)",
    ["served_by", "reason"],
)
EVENT_STREAMS = Gauge("threadstore_event_streams", "Event streams open in this process")
TITLE_SOURCES = Counter("threadstore_auto_rename_total", "Auto-rename titles by source", ["source"])
EDGE_REFUSALS = Counter(
    "threadstore_http_edge_refusals_total",
    "Connections refused or closed before the app ran, by limit: header_bytes, header_count, header_timeout, "
    "connections",
    ["limit"],
)


def watch_pool(checked_out: Callable[[], int]) -> None:
    POOL_CHECKED_OUT.set_function(lambda: float(checked_out()))


def watch_event_streams(open_streams: Callable[[], int]) -> None:
    EVENT_STREAMS.set_function(lambda: float(open_streams()))
