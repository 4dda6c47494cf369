"""/metrics: Prometheus text with route templates (never raw ids), status labels and database counters."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import Api, Factory

REQUESTS = "threadstore_http_requests_total"


async def scrape(api: Api) -> str:
    response = await api.client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return response.text


def value(exposition: str, name: str, **labels: str) -> float:
    """The sample `name` with exactly these labels; 0 when absent."""
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0


@pytest.mark.parametrize(
    "name",
    [
        REQUESTS,
        "threadstore_http_request_duration_seconds_count",
        "threadstore_db_pool_checked_out",
        "threadstore_db_commits_total",
        "threadstore_db_rollbacks_total",
    ],
)
async def test_metrics_expose_the_documented_series(api: Api, user: str, name: str) -> None:
    await api.request("GET", "/api/threads", user=user)
    exposition = await scrape(api)
    assert any(s.name == name for f in text_string_to_metric_families(exposition) for s in f.samples), name


async def test_requests_are_counted_by_route_template_not_raw_id(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    labels = {"route": "/api/threads/{thread_id}", "method": "GET", "status": "200"}
    before = value(await scrape(api), REQUESTS, **labels)
    await api.request("GET", f"/api/threads/{thread['id']}", user=user)
    await api.request("GET", f"/api/threads/{thread['id']}", user=user)
    after = await scrape(api)
    assert value(after, REQUESTS, **labels) == before + 2
    assert thread["id"] not in after


async def test_status_labels_follow_the_response(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    route = "/api/threads/{thread_id}/messages"
    created = {"route": route, "method": "POST", "status": "201"}
    missing = {"route": "/api/threads/{thread_id}", "method": "GET", "status": "404"}
    unauthorized = {"route": "/api/threads", "method": "GET", "status": "401"}
    first = await scrape(api)
    await api.request("POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": "x"})
    await api.request("GET", "/api/threads/thr_missing_metric", user=user)
    await api.client.get("/api/threads")
    second = await scrape(api)
    for labels in (created, missing, unauthorized):
        assert value(second, REQUESTS, **labels) == value(first, REQUESTS, **labels) + 1, labels
    assert "thr_missing_metric" not in second


async def test_unknown_paths_share_one_label(api: Api) -> None:
    labels = {"route": "unmatched", "method": "GET", "status": "404"}
    before = value(await scrape(api), REQUESTS, **labels)
    await api.client.get("/no/such/path-c0ffee")
    after = await scrape(api)
    assert value(after, REQUESTS, **labels) == before + 1
    assert "c0ffee" not in after


@pytest.fixture
async def quiet_api(api: Api) -> Api:
    """The app with its event delivery stopped: the publisher's own units of work (and its sweep's reads)
    would move the process-wide counters and the pool gauge in the middle of a test of one request."""
    await api.app.state.event_delivery.stop()
    return api


async def test_pool_gauge_is_zero_when_idle(quiet_api: Api, user: str) -> None:
    api = quiet_api
    await api.request("GET", "/api/threads", user=user)
    assert value(await scrape(api), "threadstore_db_pool_checked_out") == 0


async def test_a_write_counts_one_commit(quiet_api: Api, user: str) -> None:
    api = quiet_api
    before = await scrape(api)
    response = await api.request("POST", "/api/threads", user=user, json={"title": "counted"})
    assert response.status_code == 201
    after = await scrape(api)
    assert value(after, "threadstore_db_commits_total") == value(before, "threadstore_db_commits_total") + 1
    assert value(after, "threadstore_db_rollbacks_total") == value(before, "threadstore_db_rollbacks_total")


async def test_a_failed_write_counts_one_rollback_and_no_commit(
    quiet_api: Api, user: str, create_thread: Factory
) -> None:
    api = quiet_api
    thread = await create_thread()
    await api.request("DELETE", f"/api/threads/{thread['id']}", user=user)
    before = await scrape(api)
    response = await api.request("POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": "x"})
    assert response.status_code == 409
    after = await scrape(api)
    assert value(after, "threadstore_db_rollbacks_total") == value(before, "threadstore_db_rollbacks_total") + 1
    assert value(after, "threadstore_db_commits_total") == value(before, "threadstore_db_commits_total")
