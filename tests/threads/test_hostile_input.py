"""Input that one backend could store and the other could not, or that is not quite JSON: a client error
(or simply no match) on both backends, never a 500 and never silently altered data."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import Api, Factory
from tests.threads.helpers import (
    assert_problem,
    assert_validation_error,
    get_thread,
    list_page,
    listed_ids,
    stored_thread_count,
)

URL = "/api/threads"
NUL = "\x00"


def nested(depth: int) -> Any:
    document: Any = "leaf"
    for _ in range(depth):
        document = {"d": document}
    return document


def cursor(*parts: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode()


async def post_raw(api: Api, user: str, url: str, raw: str, method: str = "POST") -> Any:
    return await api.request(method, url, user=user, content=raw, headers={"content-type": "application/json"})


# --- request bodies ---------------------------------------------------------------------------------------------


async def test_nul_in_metadata_is_422_on_every_backend(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for case_id, metadata in zip(
        ["value", "key", "nested"], [{"k": f"a{NUL}b"}, {f"k{NUL}": "v"}, {"k": {"deep": [f"x{NUL}"]}}], strict=True
    ):
        with subtests.test(case_id):
            response = await api.request("POST", URL, user=user, json={"metadata": metadata})

            assert_validation_error(response, "metadata")
            assert await stored_thread_count(api, user) == 0


async def test_nul_in_initial_message_content_is_422(api: Api, user: str) -> None:
    response = await api.request("POST", URL, user=user, json={"messages": [{"content": f"a{NUL}b"}]})

    assert_validation_error(response, "messages", "content")
    assert await stored_thread_count(api, user) == 0


async def test_nul_in_patched_metadata_is_422(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(metadata={"a": "1"})

    response = await api.request("PATCH", f"{URL}/{created['id']}", user=user, json={"metadata": {"b": NUL}})

    assert_validation_error(response, "metadata")
    assert await get_thread(api, user, created["id"]) == created


async def test_non_finite_numbers_in_metadata_are_422_not_stored_as_null(
    api: Api, user: str, subtests: pytest.Subtests
) -> None:
    for number in ["NaN", "Infinity", "-Infinity", "1e400"]:
        with subtests.test(repr(number)[:60]):
            response = await post_raw(api, user, URL, f'{{"metadata": {{"k": {number}}}}}')

            assert_validation_error(response, "metadata")
            assert await stored_thread_count(api, user) == 0


async def test_integer_beyond_64_bits_in_metadata_is_422(api: Api, user: str) -> None:
    response = await post_raw(api, user, URL, '{"metadata": {"k": 123456789012345678901234567890}}')

    assert_validation_error(response, "metadata")
    assert await stored_thread_count(api, user) == 0


async def test_a_number_beyond_the_64_bit_range_in_metadata_is_422_also_as_a_float(
    api: Api, user: str, subtests: pytest.Subtests
) -> None:
    # JSON Schema counts 1e300 as an integer, so the OpenAPI document's bounds hold for every number.
    for number in ["1e300", "-1e300", "18446744073709551616.0", "-1e19"]:
        with subtests.test(number):
            response = await post_raw(api, user, URL, f'{{"metadata": {{"k": {number}}}}}')

            assert_validation_error(response, "metadata")
            assert await stored_thread_count(api, user) == 0


async def test_large_but_representable_integers_are_kept(api: Api, user: str) -> None:
    metadata = {"max": 2**63 - 1, "min": -(2**63)}
    response = await api.request("POST", URL, user=user, json={"metadata": metadata})

    assert response.status_code == 201, response.text
    assert (await get_thread(api, user, response.json()["id"]))["metadata"] == metadata


async def test_very_deeply_nested_metadata_is_422(api: Api, user: str) -> None:
    response = await api.request("POST", URL, user=user, json={"metadata": nested(300)})

    assert_validation_error(response, "metadata")
    assert await stored_thread_count(api, user) == 0


async def test_moderately_nested_metadata_is_kept(api: Api, user: str) -> None:
    response = await api.request("POST", URL, user=user, json={"metadata": nested(50)})

    assert response.status_code == 201, response.text
    assert response.json()["metadata"] == nested(50)


async def test_deeply_nested_metadata_patch_is_422(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()

    response = await api.request("PATCH", f"{URL}/{created['id']}", user=user, json={"metadata": nested(300)})

    assert_validation_error(response, "metadata")
    assert await get_thread(api, user, created["id"]) == created


# --- ids and query parameters -----------------------------------------------------------------------------------


async def test_an_id_holding_nul_is_simply_not_found(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for method, suffix in [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/auto-rename"),
        ("GET", "/messages"),
        ("POST", "/messages"),
    ]:
        with subtests.test(f"{method} {suffix}"):
            kwargs: dict[str, Any] = {}
            if method in ("PATCH", "POST"):
                kwargs["json"] = {"content": "x"} if suffix == "/messages" else {}

            response = await api.request(method, f"{URL}/thr_a%00b{suffix}", user=user, **kwargs)

            assert_problem(response, 404)


async def test_permanent_delete_of_an_id_holding_nul_is_404(api: Api, user: str) -> None:
    response = await api.request("DELETE", f"{URL}/thr_a%00b", user=user, params={"permanent": "true"})
    assert_problem(response, 404)


async def test_q_holding_nul_matches_nothing(api: Api, user: str, create_thread: Factory) -> None:
    await create_thread(title="anything")
    assert await listed_ids(api, user, q=f"any{NUL}") == []


async def test_metadata_filter_holding_nul_matches_nothing(
    api: Api, user: str, create_thread: Factory, subtests: pytest.Subtests
) -> None:
    for param in [{"metadata.k": f"v{NUL}"}, {f"metadata.k{NUL}": "v"}]:
        with subtests.test(repr(param)[:60]):
            await create_thread(metadata={"k": "v"})
            assert (await list_page(api, user, **param))["data"] == []


async def test_forged_cursor_is_422(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for case_id, value in zip(
        ["nul-id", "before-year-1-in-utc", "after-year-9999-in-utc"],
        [
            cursor("2026-01-01T00:00:00+00:00", f"thr_{NUL}"),
            cursor("0001-01-01T00:00:00+05:00", "thr_x"),
            cursor("9999-12-31T23:59:59-05:00", "thr_x"),
        ],
        strict=True,
    ):
        with subtests.test(case_id):
            assert_validation_error(await api.request("GET", URL, user=user, params={"cursor": value}), "cursor")


async def test_q_longer_than_a_title_can_be_is_422(api: Api, user: str) -> None:
    assert_validation_error(await api.request("GET", URL, user=user, params={"q": "x" * 257}), "q")


@pytest.mark.parametrize(
    "raw",
    ['{"metadata": {"k": 123456789012345678901234567890}}', json.dumps({"metadata": nested(300)})],
    ids=["huge-integer", "deep-nesting"],
)
async def test_unstorable_metadata_with_an_idempotency_key_is_422(api: Api, user: str, raw: str) -> None:
    response = await api.request(
        "POST", URL, user=user, content=raw, headers={"content-type": "application/json", "Idempotency-Key": "k-1"}
    )

    assert_validation_error(response, "metadata")
    assert await stored_thread_count(api, user) == 0


@pytest.mark.parametrize(
    ("url_kind", "body"),
    [
        ("threads", '{"title": "a\\ud800b"}'),
        ("threads", '{"messages": [{"content": "x\\udfff"}]}'),
        ("threads", '{"metadata": {"k": "\\ud83d"}}'),
        ("messages", '{"content": "\\ud83d"}'),
    ],
)
async def test_lone_surrogates_are_422_not_500(
    api: Api, user: str, create_thread: Factory, url_kind: str, body: str
) -> None:
    """JSON may escape half of a surrogate pair; no database can store it, so it is refused up front."""
    url = "/api/threads"
    if url_kind == "messages":
        url = f"/api/threads/{(await create_thread())['id']}/messages"
    response = await api.request("POST", url, user=user, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert "surrogate" in response.text


async def test_more_than_16_metadata_filters_are_422(api: Api, user: str) -> None:
    params = {f"metadata.k{i}": "v" for i in range(17)}
    response = await api.request("GET", "/api/threads", user=user, params=params)
    assert response.status_code == 422
    ok = await api.request("GET", "/api/threads", user=user, params=dict(list(params.items())[:16]))
    assert ok.status_code == 200
