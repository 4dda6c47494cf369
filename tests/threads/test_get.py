"""GET /api/threads/{id}: the thread, its ETag, conditional GET, and 404s that reveal nothing."""

from __future__ import annotations

import pytest

from tests.conftest import Api, Factory
from tests.threads.helpers import append, assert_problem, assert_thread_response, same_problem

URL = "/api/threads"


async def test_get_returns_the_thread_with_its_version_as_etag(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(title="Trip", metadata={"topic": "travel"})

    response = await api.request("GET", f"{URL}/{created['id']}", user=user)

    assert assert_thread_response(response) == created
    assert response.headers["etag"] == '"1"'


async def test_etag_follows_the_version(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()
    assert (await append(api, user, created["id"])).status_code == 201
    assert (await append(api, user, created["id"])).status_code == 201

    response = await api.request("GET", f"{URL}/{created['id']}", user=user)

    thread = assert_thread_response(response)
    assert thread["version"] == 3
    assert thread["message_count"] == 2
    assert response.headers["etag"] == '"3"'


async def test_if_none_match_with_the_current_etag_is_304(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()

    response = await api.request("GET", f"{URL}/{created['id']}", user=user, headers={"If-None-Match": '"1"'})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == '"1"'


async def test_if_none_match_variants_naming_the_current_version_are_304(
    api: Api, user: str, create_thread: Factory, subtests: pytest.Subtests
) -> None:
    for header in ['W/"1"', '"7", "1"', "*", ' "1" ']:
        with subtests.test(repr(header)[:60]):
            created = await create_thread()

            response = await api.request("GET", f"{URL}/{created['id']}", user=user, headers={"If-None-Match": header})

            assert response.status_code == 304
            assert response.content == b""


async def test_if_none_match_with_a_stale_etag_is_200(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()
    assert (await append(api, user, created["id"])).status_code == 201

    response = await api.request("GET", f"{URL}/{created['id']}", user=user, headers={"If-None-Match": '"1"'})

    thread = assert_thread_response(response)
    assert thread["version"] == 2
    assert response.headers["etag"] == '"2"'


async def test_if_none_match_that_names_nothing_current_is_200(
    api: Api, user: str, create_thread: Factory, subtests: pytest.Subtests
) -> None:
    for header in ['"abc"', "1", '""']:
        with subtests.test(repr(header)[:60]):
            created = await create_thread()

            response = await api.request("GET", f"{URL}/{created['id']}", user=user, headers={"If-None-Match": header})

            assert assert_thread_response(response) == created


async def test_if_none_match_on_another_users_thread_is_404_not_304(
    api: Api, other_user: str, create_thread: Factory
) -> None:
    created = await create_thread()

    response = await api.request("GET", f"{URL}/{created['id']}", user=other_user, headers={"If-None-Match": '"1"'})

    assert_problem(response, 404)


async def test_another_users_thread_and_a_missing_one_are_indistinguishable(
    api: Api, other_user: str, create_thread: Factory
) -> None:
    created = await create_thread(title="private")

    foreign = await api.request("GET", f"{URL}/{created['id']}", user=other_user)
    missing = await api.request("GET", f"{URL}/thr_doesnotexist0000000000", user=other_user)

    foreign_body = assert_problem(foreign, 404)
    missing_body = assert_problem(missing, 404)
    assert same_problem(foreign_body, missing_body)
    assert foreign_body["request_id"] != missing_body["request_id"]
    assert set(foreign.headers) == set(missing.headers)
    assert "private" not in foreign.text


async def test_problem_request_id_echoes_the_incoming_x_request_id(api: Api, user: str) -> None:
    response = await api.request("GET", f"{URL}/thr_missing", user=user, headers={"X-Request-ID": "trace-42.a"})

    assert assert_problem(response, 404)["request_id"] == "trace-42.a"
    assert response.headers["x-request-id"] == "trace-42.a"


async def test_ids_that_do_not_exist_are_404(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for thread_id in ["x", "thr_" + "A" * 22, "x" * 300, "..%2F..%2Fetc", "%20"]:
        with subtests.test(repr(thread_id)[:60]):
            assert_problem(await api.request("GET", f"{URL}/{thread_id}", user=user), 404)


async def test_get_requires_authentication(api: Api, create_thread: Factory) -> None:
    created = await create_thread()

    response = await api.client.get(f"{URL}/{created['id']}")

    assert_problem(response, 401)
    assert response.headers["www-authenticate"].lower().startswith("bearer")
