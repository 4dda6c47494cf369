"""Request limits: body size (413), content type (415), malformed JSON and unknown fields (422)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import Api
from tests.http.problems import assert_problem, thread_count

MIB = 1024 * 1024


def oversized_json(total: int) -> bytes:
    prefix, suffix = b'{"title": "', b'"}'
    return prefix + b"x" * (total - len(prefix) - len(suffix)) + suffix


async def chunks(body: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


JSON = {"Content-Type": "application/json"}


async def test_a_body_over_1_mib_with_content_length_is_413(api: Api, user: str) -> None:
    body = oversized_json(MIB + 1)
    response = await api.request("POST", "/api/threads", user=user, content=body, headers=JSON)
    assert_problem(response, 413)
    assert await thread_count(api, user) == 0


async def test_a_streamed_body_over_1_mib_without_content_length_is_413(api: Api, user: str) -> None:
    body = oversized_json(MIB + 1)
    response = await api.request("POST", "/api/threads", user=user, content=chunks(body), headers=JSON)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413)
    assert await thread_count(api, user) == 0


async def test_a_streamed_message_body_over_1_mib_is_413(api: Api, user: str) -> None:
    thread = (await api.request("POST", "/api/threads", user=user, json={})).json()
    body = b'{"content": "' + b"x" * (MIB + 10) + b'"}'
    response = await api.request(
        "POST", f"/api/threads/{thread['id']}/messages", user=user, content=chunks(body), headers=JSON
    )
    assert_problem(response, 413)
    assert (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()["message_count"] == 0


async def test_a_body_of_exactly_1_mib_is_not_413(api: Api, user: str) -> None:
    thread = (await api.request("POST", "/api/threads", user=user, json={})).json()
    # Exactly at the limit: accepted by the size check, then refused by the content limit (262,144 chars).
    body = b'{"content": "' + b"x" * (MIB - 15) + b'"}'
    assert len(body) == MIB
    response = await api.request("POST", f"/api/threads/{thread['id']}/messages", user=user, content=body, headers=JSON)
    assert_problem(response, 422)
    streamed = await api.request(
        "POST", f"/api/threads/{thread['id']}/messages", user=user, content=chunks(body), headers=JSON
    )
    assert_problem(streamed, 422)


async def test_a_lying_content_length_header_is_not_trusted(api: Api, user: str) -> None:
    body = oversized_json(MIB + 1)
    response = await api.request(
        "POST", "/api/threads", user=user, content=chunks(body), headers={**JSON, "Content-Length": "10"}
    )
    assert_problem(response, 413)  # the bytes received are counted, whatever the header claims
    assert await thread_count(api, user) == 0


async def test_a_non_numeric_content_length_is_400(api: Api, user: str) -> None:
    response = await api.request(
        "POST", "/api/threads", user=user, content=b"{}", headers={**JSON, "Content-Length": "abc"}
    )
    assert_problem(response, 400)


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None])
async def test_a_body_that_is_not_json_is_415(api: Api, user: str, content_type: str | None) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await api.request("POST", "/api/threads", user=user, content=b'{"title": "x"}', headers=headers)
    assert_problem(response, 415)
    assert await thread_count(api, user) == 0


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "APPLICATION/JSON"])
async def test_json_content_type_variants_are_accepted(api: Api, user: str, content_type: str) -> None:
    response = await api.request(
        "POST", "/api/threads", user=user, content=b'{"title": "x"}', headers={"Content-Type": content_type}
    )
    assert response.status_code == 201, response.text


async def test_a_message_body_that_is_not_json_is_415(api: Api, user: str) -> None:
    thread = (await api.request("POST", "/api/threads", user=user, json={})).json()
    response = await api.request(
        "POST",
        f"/api/threads/{thread['id']}/messages",
        user=user,
        content=b"hello",
        headers={"Content-Type": "text/plain"},
    )
    assert_problem(response, 415)


@pytest.mark.parametrize(
    "raw",
    [b"{", b'{"title": }', b"{'title': 'x'}", b'{"title": "x",}', b"\xff\xfe", b"nul\x00l"],
    ids=["truncated", "missing-value", "single-quotes", "trailing-comma", "not-utf8", "nul"],
)
async def test_malformed_json_is_a_422_problem(api: Api, user: str, raw: bytes) -> None:
    response = await api.request("POST", "/api/threads", user=user, content=raw, headers=JSON)
    assert_problem(response, 422)
    assert await thread_count(api, user) == 0


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b'{"metadata": {"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}", "nested too deeply"),
        (b'{"title": "caf\xe9"}', "not valid UTF-8"),
        (b'{"metadata": {"n": ' + b"9" * 5_000 + b"}}", "number too long"),
    ],
    ids=["nested-100000-deep", "latin-1-in-a-string", "5000-digit-integer"],
)
async def test_json_the_parser_gives_up_on_is_a_422_problem(api: Api, user: str, raw: bytes, why: str) -> None:
    """Python's parser fails on these with RecursionError, UnicodeDecodeError and ValueError, which FastAPI
    answers with a bare 400 rather than as malformed JSON."""
    response = await api.request("POST", "/api/threads", user=user, content=raw, headers=JSON)
    body = assert_problem(response, 422)
    assert [e["loc"] for e in body["errors"]] == [["body"]]
    assert why in body["errors"][0]["msg"]
    assert await thread_count(api, user) == 0


@pytest.mark.parametrize("raw", [b"[]", b'"a string"', b"42", b"null"])
async def test_a_json_body_that_is_not_an_object_is_422(api: Api, user: str, raw: bytes) -> None:
    response = await api.request("POST", "/api/threads", user=user, content=raw, headers=JSON)
    assert_problem(response, 422)


async def test_unknown_fields_are_422(api: Api, user: str) -> None:
    response = await api.request("POST", "/api/threads", user=user, json={"title": "x", "titel": "typo"})
    body = assert_problem(response, 422)
    assert ["body", "titel"] in [e["loc"] for e in body["errors"]]
    assert await thread_count(api, user) == 0


async def test_unknown_fields_in_initial_messages_are_422(api: Api, user: str) -> None:
    response = await api.request(
        "POST", "/api/threads", user=user, json={"messages": [{"content": "x", "author": "me"}]}
    )
    assert_problem(response, 422)
    assert await thread_count(api, user) == 0


async def test_unknown_fields_in_a_patch_are_422(api: Api, user: str) -> None:
    thread = (await api.request("POST", "/api/threads", user=user, json={})).json()
    response = await api.request("PATCH", f"/api/threads/{thread['id']}", user=user, json={"stauts": "archived"})
    assert_problem(response, 422)
    after = (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()
    assert after["version"] == 1
