"""Problem details and request ids: every error is application/problem+json carrying the X-Request-ID."""

from __future__ import annotations

import pytest

from tests.conftest import Api
from tests.http.problems import assert_problem


async def test_every_response_carries_a_request_id(api: Api, user: str) -> None:
    for response in [
        await api.client.get("/healthz"),
        await api.request("GET", "/api/threads", user=user),
        await api.client.get("/api/threads"),
    ]:
        assert response.headers.get("x-request-id"), response.headers


async def test_request_ids_differ_between_requests(api: Api) -> None:
    ids = {(await api.client.get("/healthz")).headers["x-request-id"] for _ in range(5)}
    assert len(ids) == 5


@pytest.mark.parametrize("incoming", ["abc-123", "req:2026.11.27_x", "A" * 128])
async def test_a_valid_incoming_request_id_is_echoed(api: Api, user: str, incoming: str) -> None:
    response = await api.request("GET", "/api/threads/thr_missing", user=user, headers={"X-Request-ID": incoming})
    assert response.headers["x-request-id"] == incoming
    assert assert_problem(response, 404)["request_id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["has spaces", "x" * 300, "A" * 129, "semi;colon", 'quote"d', "new\\nline", "<script>"],
    ids=["spaces", "300-chars", "129-chars", "semicolon", "quote", "backslash", "html"],
)
async def test_an_invalid_incoming_request_id_is_replaced(api: Api, user: str, incoming: str) -> None:
    response = await api.request("GET", "/api/threads/thr_missing", user=user, headers={"X-Request-ID": incoming})
    replaced = response.headers["x-request-id"]
    assert replaced and replaced != incoming
    assert assert_problem(response, 404)["request_id"] == replaced


async def test_a_success_echoes_the_request_id_too(api: Api, user: str) -> None:
    response = await api.request("POST", "/api/threads", user=user, json={}, headers={"X-Request-ID": "create-1"})
    assert response.status_code == 201
    assert response.headers["x-request-id"] == "create-1"


async def test_unknown_route_is_a_404_problem(api: Api, user: str) -> None:
    assert_problem(await api.request("GET", "/api/nothing-here", user=user), 404)
    assert_problem(await api.client.get("/not/a/route"), 404)


async def test_missing_thread_is_a_404_problem(api: Api, user: str) -> None:
    assert_problem(await api.request("GET", "/api/threads/thr_missing", user=user), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [("PUT", "/api/threads"), ("DELETE", "/api/threads"), ("PUT", "/api/threads/thr_x"), ("POST", "/healthz")],
)
async def test_wrong_method_is_a_405_problem(api: Api, user: str, method: str, path: str) -> None:
    response = await api.request(method, path, user=user)
    assert_problem(response, 405)
    assert response.headers.get("allow"), response.headers


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/threads", {"GET", "POST"}),
        ("/api/threads/thr_x", {"GET", "PATCH", "DELETE"}),
        ("/api/threads/thr_x/messages", {"GET", "POST"}),
    ],
)
async def test_405_allow_lists_every_method_of_the_resource(api: Api, user: str, path: str, expected: set[str]) -> None:
    response = await api.request("PUT", path, user=user)
    assert_problem(response, 405)
    allowed = {m.strip() for m in response.headers["allow"].split(",")}
    assert expected <= allowed, allowed
    assert "PUT" not in allowed


async def test_422_lists_where_and_what_without_echoing_input(api: Api, user: str) -> None:
    response = await api.request(
        "POST", "/api/threads", user=user, json={"title": 12345, "unexpected": "SECRET-INPUT-VALUE"}
    )
    body = assert_problem(response, 422)
    locs = [e["loc"] for e in body["errors"]]
    assert ["body", "unexpected"] in locs, locs
    assert ["body", "title"] in locs, locs
    assert "SECRET-INPUT-VALUE" not in response.text
    assert "pydantic" not in response.text.lower()


async def test_problem_type_is_a_stable_uri_per_kind(api: Api, user: str) -> None:
    first = assert_problem(await api.request("GET", "/api/threads/a", user=user), 404)
    second = assert_problem(await api.request("GET", "/api/threads/b", user=user), 404)
    unauthorized = assert_problem(await api.client.get("/api/threads"), 401)
    assert first["type"] == second["type"] != unauthorized["type"]
    assert first["title"] == "Not Found"
