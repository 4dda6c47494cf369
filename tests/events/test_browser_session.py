"""In a browser (API.md): CORS for the listed origins, and the events cookie that lets an EventSource, which
cannot send Authorization, follow the caller's own events — and opens nothing else."""

from __future__ import annotations

import time
from http.cookies import SimpleCookie
from typing import Any

import httpx
import jwt
import pytest

from tests.harness.client import Api
from tests.harness.databases import JWT_SECRET, new_user
from threadstore.auth import EVENTS_SCOPE, issue_token

ORIGIN = "https://chat.example"
COOKIE = "threadstore_events"


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"cors_origins": [ORIGIN]}


def _cookie(response: httpx.Response) -> Any:
    jar: SimpleCookie = SimpleCookie()
    jar.load(response.headers["set-cookie"])
    return jar[COOKIE]


def _with(token: str) -> dict[str, str]:
    """A request's events cookie, sent as a browser sends it."""
    return {"Cookie": f"{COOKIE}={token}"}


async def _session(api: Api, user: str, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else api.auth(user)
    return await api.client.post("/api/events/session", headers=headers)


async def test_a_preflight_from_a_listed_origin_allows_the_contracts_methods_and_headers(api: Api) -> None:
    wanted = "authorization, content-type, idempotency-key, if-match, if-none-match, last-event-id, x-request-id"
    r = await api.client.options(
        "/api/threads/thr_x",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": wanted,
        },
    )
    assert 200 <= r.status_code < 300, r.text
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.headers["access-control-allow-credentials"] == "true"
    assert {"GET", "POST", "PATCH", "PUT", "DELETE"} <= set(r.headers["access-control-allow-methods"].split(", "))
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert set(wanted.split(", ")) <= allowed
    other = await api.client.options(
        "/api/threads", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in other.headers


async def test_every_answer_to_a_listed_origin_carries_cors_errors_included(api: Api, user: str) -> None:
    exposed = {"etag", "location", "retry-after", "x-request-id", "idempotent-replayed", "x-title-source"}
    for method, url, headers in (
        ("POST", "/api/threads", api.auth(user)),  # 201
        ("GET", "/api/threads/thr_missing", api.auth(user)),  # 404
        ("GET", "/api/threads", {}),  # 401
    ):
        r = await api.client.request(
            method, url, headers={**headers, "Origin": ORIGIN}, json={} if method == "POST" else None
        )
        assert r.headers["access-control-allow-origin"] == ORIGIN, (url, r.status_code)
        assert r.headers["access-control-allow-credentials"] == "true"
        assert exposed <= {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    # An early answer of the request-context middleware (415: not JSON) too.
    r = await api.client.post(
        "/api/threads", headers={**api.auth(user), "Origin": ORIGIN, "Content-Type": "text/plain"}, content=b"x"
    )
    assert r.status_code == 415 and r.headers["access-control-allow-origin"] == ORIGIN
    r = await api.client.get("/api/threads", headers={**api.auth(user), "Origin": "https://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


async def test_the_session_sets_a_strict_http_only_cookie_for_the_event_stream_until_the_tokens_exp(
    api: Api, user: str
) -> None:
    token = issue_token(JWT_SECRET, user, 600)
    r = await _session(api, user, token)
    assert r.status_code == 204, r.text
    cookie = _cookie(r)
    assert cookie["path"] == "/api/events"
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "strict"
    assert not cookie["secure"]  # plain http, not configured
    assert 595 <= int(cookie["max-age"]) <= 600
    exp = jwt.decode(token, JWT_SECRET, algorithms=["HS256"])["exp"]
    claims = jwt.decode(cookie.value, JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == user and claims["exp"] <= exp and claims["scope"] == EVENTS_SCOPE


async def test_the_cookie_opens_the_callers_event_stream_and_nothing_else(api: Api, user: str) -> None:
    cookie = _cookie(await _session(api, user)).value
    jar = {COOKIE: cookie}
    async with (
        httpx.AsyncClient(base_url=api.base_url, timeout=httpx.Timeout(30.0, read=None), cookies=jar) as client,
        client.stream("GET", "/api/events") as response,
    ):
        assert response.status_code == 200
        stream_lines = response.aiter_lines()
        assert await anext(stream_lines) == ": connected"
        other = new_user()
        await api.create_thread(other, title="not yours")
        mine = await api.create_thread(user, title="mine")
        seen = ""
        while mine["id"] not in seen:
            seen = await anext(stream_lines)
            assert "not yours" not in seen
    # Any other request with the cookie alone, or its token as a bearer token: 401.
    for method, url in (("GET", "/api/threads"), ("POST", "/api/threads"), ("GET", "/api/search?q=x")):
        r = await api.client.request(method, url, headers=_with(cookie), json={} if method == "POST" else None)
        assert r.status_code == 401, (url, r.text)
        r = await api.client.request(method, url, headers={"Authorization": f"Bearer {cookie}"})
        assert r.status_code == 401, (url, r.text)
    # Nor can the cookie's token open a session of its own (a cookie for ever).
    assert (await _session(api, user, cookie)).status_code == 401
    # A bearer token is not a cookie token.
    r = await api.client.get("/api/events", headers=_with(issue_token(JWT_SECRET, user, 600)))
    assert r.status_code == 401


async def test_no_cookie_for_an_expired_token_and_none_accepted_past_its_exp(api: Api, user: str) -> None:
    expired = jwt.encode({"sub": user, "exp": int(time.time()) - 5}, JWT_SECRET, algorithm="HS256")
    r = await _session(api, user, expired)
    assert r.status_code == 401 and "set-cookie" not in r.headers
    past = jwt.encode({"sub": user, "exp": time.time() - 1, "scope": EVENTS_SCOPE}, JWT_SECRET, algorithm="HS256")
    r = await api.client.get("/api/events", headers=_with(past))
    assert r.status_code == 401
    forged = jwt.encode({"sub": user, "scope": EVENTS_SCOPE}, "another-secret-of-32-bytes-or-more!!", algorithm="HS256")
    assert (await api.client.get("/api/events", headers=_with(forged))).status_code == 401


@pytest.mark.parametrize("settings_overrides", [{"cors_origins": [ORIGIN], "events_cookie_samesite": "none"}])
async def test_samesite_none_for_a_page_on_another_origin_is_secure(api: Api, user: str) -> None:
    cookie = _cookie(await _session(api, user))
    assert cookie["samesite"] == "none" and cookie["secure"] is True
