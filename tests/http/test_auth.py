"""Bearer JWT authentication: every failure is 401 with `WWW-Authenticate: Bearer` and a problem body."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
import warnings
from typing import Any

import jwt
import pytest

from tests.conftest import JWT_SECRET, Api
from tests.http.problems import assert_problem
from threadstore.auth import TokenVerifier
from threadstore.errors import Unauthorized

PROTECTED = [
    ("GET", "/api/threads"),
    ("POST", "/api/threads"),
    ("GET", "/api/threads/thr_x"),
    ("PATCH", "/api/threads/thr_x"),
    ("DELETE", "/api/threads/thr_x"),
    ("GET", "/api/threads/thr_x/messages"),
    ("POST", "/api/threads/thr_x/messages"),
    ("POST", "/api/threads/thr_x/auto-rename"),
]


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def token(claims: dict[str, Any], secret: str = JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, secret, algorithm=algorithm)


def hs512_token(claims: dict[str, Any]) -> str:
    # The right secret with the wrong algorithm: only HS256 is accepted.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return token(claims, algorithm="HS512")


def unsigned_token(claims: dict[str, Any]) -> str:
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(claims)}."


NOW = int(time.time())
BAD_AUTHORIZATION = {
    "wrong-scheme": "Basic dXNlcjpwYXNz",
    "token-scheme": f"Token {token({'sub': 'u1'})}",
    "scheme-only": "Bearer",
    "scheme-and-space": "Bearer   ",
    "malformed": "Bearer not-a-jwt",
    "two-segments": "Bearer abc.def",
    "bad-signature": f"Bearer {token({'sub': 'u1'}, secret='another-secret-' + 'y' * 40)}",
    "expired": f"Bearer {token({'sub': 'u1', 'exp': NOW - 60})}",
    "no-sub": f"Bearer {token({'name': 'u1'})}",
    "empty-sub": f"Bearer {token({'sub': ''})}",
    "long-sub": f"Bearer {token({'sub': 'u' * 256})}",
    "numeric-sub": f"Bearer {token({'sub': 12345})}",
    "alg-none": f"Bearer {unsigned_token({'sub': 'u1'})}",
    "alg-none-with-signature": f"Bearer {unsigned_token({'sub': 'u1'})}c2ln",
    "hs512": f"Bearer {hs512_token({'sub': 'u1'})}",
    # exp, nbf and iat are numbers (RFC 7519 NumericDate); PyJWT alone reads a numeric string or a boolean.
    "string-exp": f"Bearer {token({'sub': 'u1', 'exp': str(NOW + 3600)})}",
    "string-nbf": f"Bearer {token({'sub': 'u1', 'nbf': str(NOW - 60)})}",
    "string-iat": f"Bearer {token({'sub': 'u1', 'iat': str(NOW - 60)})}",
    "boolean-nbf": f"Bearer {token({'sub': 'u1', 'nbf': True})}",
    "exp-beyond-float": f"Bearer {token({'sub': 'u1', 'exp': 10**400})}",
    "future-nbf": f"Bearer {token({'sub': 'u1', 'nbf': NOW + 3600})}",
    "future-iat": f"Bearer {token({'sub': 'u1', 'iat': NOW + 3600})}",
    "tampered-payload": "Bearer "
    + ".".join([token({"sub": "u1"}).split(".")[0], _b64({"sub": "admin"}), token({"sub": "u1"}).split(".")[2]]),
}


def assert_unauthorized(response: Any) -> None:
    assert_problem(response, 401)
    assert response.headers["www-authenticate"].split()[0] == "Bearer"


async def test_missing_authorization_is_401(api: Api) -> None:
    assert_unauthorized(await api.client.get("/api/threads"))


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION.values(), ids=BAD_AUTHORIZATION.keys())
async def test_bad_authorization_is_401(api: Api, authorization: str) -> None:
    response = await api.client.get("/api/threads", headers={"Authorization": authorization})
    assert_unauthorized(response)


@pytest.mark.parametrize(("method", "path"), PROTECTED)
async def test_every_api_endpoint_needs_a_token(api: Api, method: str, path: str) -> None:
    response = await api.client.request(method, path)
    assert_unauthorized(response)


async def test_a_rejected_token_writes_nothing(api: Api) -> None:
    forged = unsigned_token({"sub": "victim"})
    response = await api.client.post(
        "/api/threads", json={"title": "forged"}, headers={"Authorization": f"Bearer {forged}"}
    )
    assert_unauthorized(response)
    listed = await api.request("GET", "/api/threads", user="victim")
    assert listed.json()["data"] == []


async def test_the_401_body_is_the_same_for_every_failure(api: Api) -> None:
    details = set()
    for authorization in ["Bearer not-a-jwt", f"Bearer {token({'sub': 'u', 'exp': NOW - 60})}"]:
        response = await api.client.get("/api/threads", headers={"Authorization": authorization})
        details.add(response.json()["detail"])
        assert "Signature" not in response.text and "jwt" not in response.text.lower()
    assert len(details) == 1


async def test_a_valid_token_without_exp_is_accepted(api: Api) -> None:
    response = await api.client.get("/api/threads", headers={"Authorization": f"Bearer {token({'sub': 'u-noexp'})}"})
    assert response.status_code == 200, response.text


async def test_a_valid_token_with_future_exp_is_accepted(api: Api) -> None:
    bearer = token({"sub": "u-exp", "exp": NOW + 3600})
    response = await api.client.get("/api/threads", headers={"Authorization": f"Bearer {bearer}"})
    assert response.status_code == 200, response.text


async def test_an_accepted_token_is_refused_once_its_exp_passes(api: Api) -> None:
    # At least a whole second ahead: `int(time.time()) + 1` can be a few ms away, and then the first request
    # of a slow run already arrives after it.
    exp = int(time.time()) + 2
    headers = {"Authorization": f"Bearer {token({'sub': 'u-short', 'exp': exp})}"}
    assert (await api.client.get("/api/threads", headers=headers)).status_code == 200
    await asyncio.sleep(max(0.0, exp - time.time()) + 0.05)
    assert_unauthorized(await api.client.get("/api/threads", headers=headers))


async def test_the_scheme_is_case_insensitive(api: Api) -> None:
    response = await api.client.get("/api/threads", headers={"Authorization": f"bearer {token({'sub': 'u-lc'})}"})
    assert response.status_code == 200, response.text


async def test_sub_is_the_user_id(api: Api) -> None:
    headers = {"Authorization": f"Bearer {token({'sub': 'alice-sub'})}"}
    created = await api.client.post("/api/threads", json={"title": "mine"}, headers=headers)
    assert created.status_code == 201
    assert (await api.request("GET", f"/api/threads/{created.json()['id']}", user="alice-sub")).status_code == 200
    assert (await api.request("GET", f"/api/threads/{created.json()['id']}", user="bob-sub")).status_code == 404


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/docs", "/openapi.json"])
async def test_operational_endpoints_need_no_token(api: Api, path: str) -> None:
    response = await api.client.get(path)
    assert response.status_code == 200, response.text


async def test_openapi_declares_bearer_auth(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    schemes = document["components"]["securitySchemes"]
    assert any(s.get("scheme", "").lower() == "bearer" for s in schemes.values()), schemes


@pytest.mark.parametrize("sub", ["a\x00b", "line\nbreak", "tab\there"])
async def test_subject_with_control_characters_is_refused(api: Api, sub: str) -> None:
    token = jwt.encode({"sub": sub}, JWT_SECRET, algorithm="HS256")
    response = await api.client.post("/api/threads", json={}, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.sqlite_only  # auth reads no database: one backend proves it, and the test waits for exp
async def test_a_token_with_a_string_exp_is_refused_before_and_after_its_exp(api: Api) -> None:
    # Accepted once, such a token used to be remembered without an expiry, and then it never expired.
    exp = int(time.time()) + 2
    headers = {"Authorization": f"Bearer {token({'sub': 'u-string-exp', 'exp': str(exp)})}"}
    before = (await api.client.get("/api/threads", headers=headers)).status_code
    await asyncio.sleep(max(0.0, exp - time.time()) + 0.05)
    after = (await api.client.get("/api/threads", headers=headers)).status_code
    assert (before, after) == (401, 401)


def test_a_remembered_token_is_refused_from_the_instant_a_fresh_one_is() -> None:
    # A fractional exp: a whole-second comparison (PyJWT's) refuses it earlier than `exp` itself does, so a
    # remembered token and a freshly verified one disagreed in between.
    exp = math.floor(time.time()) + 1.9
    authorization = f"Bearer {token({'sub': 'u-fraction', 'exp': exp})}"
    remembered = TokenVerifier(JWT_SECRET)
    assert remembered.user_id(authorization) == "u-fraction"
    time.sleep(max(0.0, math.floor(exp) + 0.3 - time.time()))  # past exp's whole second, before exp

    def outcome(verifier: TokenVerifier) -> str | None:
        try:
            return verifier.user_id(authorization)
        except Unauthorized:
            return None

    assert outcome(remembered) == outcome(TokenVerifier(JWT_SECRET))


def test_verify_gives_the_user_and_the_instant_the_token_expires() -> None:
    verifier = TokenVerifier(JWT_SECRET)
    expiring = verifier.verify(f"Bearer {token({'sub': 'u-until', 'exp': NOW + 3600.5})}")
    assert (expiring.user_id, expiring.expires_at) == ("u-until", NOW + 3600.5)
    lasting = verifier.verify(f"Bearer {token({'sub': 'u-forever'})}")
    assert (lasting.user_id, lasting.expires_at) == ("u-forever", None)
    # The remembered answer is the same answer.
    assert verifier.verify(f"Bearer {token({'sub': 'u-until', 'exp': NOW + 3600.5})}") == expiring


class TestRequireExp:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"require_exp": True}

    async def test_a_token_without_exp_is_refused(self, api: Api) -> None:
        bearer = token({"sub": "u-required"})
        assert_unauthorized(await api.client.get("/api/threads", headers={"Authorization": f"Bearer {bearer}"}))

    async def test_a_token_with_exp_is_accepted(self, api: Api) -> None:
        bearer = token({"sub": "u-required", "exp": NOW + 3600})
        response = await api.client.get("/api/threads", headers={"Authorization": f"Bearer {bearer}"})
        assert response.status_code == 200, response.text
