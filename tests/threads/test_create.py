"""POST /api/threads: the created thread, initial messages (atomic), and every limit on the body."""

from __future__ import annotations

import math
import string
from typing import Any

import pytest

from tests.conftest import Api
from tests.threads.helpers import (
    assert_problem,
    assert_thread_response,
    assert_validation_error,
    get_thread,
    listed_ids,
    parse_time,
    stored_thread_count,
)

pytestmark = pytest.mark.through_pgbouncer

URL = "/api/threads"


async def create(api: Api, user: str, body: Any) -> Any:
    return await api.request("POST", URL, user=user, json=body)


async def assert_nothing_created(api: Api, user: str) -> None:
    assert await listed_ids(api, user, status="all") == []
    assert await stored_thread_count(api, user) == 0


# --- the created thread -------------------------------------------------------------------------------------


async def test_create_returns_201_with_location_and_etag_1(api: Api, user: str) -> None:
    response = await create(api, user, {"title": "Trip to Lisbon"})

    thread = assert_thread_response(response, 201)
    assert response.headers["etag"] == '"1"'
    assert response.headers["location"] == f"/api/threads/{thread['id']}"


async def test_location_names_the_created_thread(api: Api, user: str) -> None:
    response = await create(api, user, {"title": "Findable"})

    fetched = await api.request("GET", response.headers["location"], user=user)
    assert fetched.status_code == 200
    assert fetched.json() == response.json()


async def test_created_thread_has_every_field(api: Api, user: str) -> None:
    response = await create(api, user, {"title": "Trip to Lisbon", "metadata": {"topic": "travel"}})

    thread = assert_thread_response(response, 201)
    assert thread["object"] == "thread"
    assert thread["title"] == "Trip to Lisbon"
    assert thread["metadata"] == {"topic": "travel"}
    assert thread["status"] == "active"
    assert thread["archived_at"] is None
    assert thread["message_count"] == 0
    assert thread["last_message_at"] is None
    assert thread["version"] == 1
    assert isinstance(thread["id"], str)
    assert parse_time(thread["created_at"]) == parse_time(thread["updated_at"])


async def test_empty_body_creates_an_untitled_thread_with_empty_metadata(api: Api, user: str) -> None:
    thread = assert_thread_response(await create(api, user, {}), 201)

    assert thread["title"] is None
    assert thread["metadata"] == {}
    assert thread["status"] == "active"
    assert thread["version"] == 1


async def test_timestamps_are_rfc3339_utc_with_milliseconds(api: Api, user: str) -> None:
    thread = assert_thread_response(await create(api, user, {"messages": [{"content": "hi"}]}), 201)

    for field in ("created_at", "updated_at", "last_message_at"):
        value = thread[field]
        assert value.endswith("Z"), value
        parse_time(value)  # asserts the format


async def test_ids_are_distinct_and_carry_at_least_96_random_bits(api: Api, user: str) -> None:
    ids = [(assert_thread_response(await create(api, user, {}), 201))["id"] for _ in range(20)]

    assert len(set(ids)) == len(ids)
    # What varies between ids is what is random: strip the shared prefix, measure the rest by its alphabet.
    prefix = 0
    while all(len(i) > prefix and i[prefix] == ids[0][prefix] for i in ids):
        prefix += 1
    tails = [i[prefix:] for i in ids]
    alphabet = {ch for tail in tails for ch in tail}
    bits_per_char = math.log2(64 if alphabet - set(string.hexdigits) else 16)
    assert min(len(t) for t in tails) * bits_per_char >= 96, ids
    assert not all(i.isdigit() for i in ids), "ids must not be sequential numbers"


async def test_created_thread_is_only_visible_to_its_owner(api: Api, user: str, other_user: str) -> None:
    thread = assert_thread_response(await create(api, user, {"title": "Mine"}), 201)

    other = await api.request("GET", f"{URL}/{thread['id']}", user=other_user)
    assert_problem(other, 404)
    assert await listed_ids(api, other_user, status="all") == []


# --- initial messages -----------------------------------------------------------------------------------------


async def test_initial_messages_are_created_with_the_thread_at_version_1(api: Api, user: str) -> None:
    contents = [("system", "Be brief."), ("user", "How long is the flight?"), ("assistant", "About 2 hours.")]
    body = {"title": "Flight", "messages": [{"role": r, "content": c} for r, c in contents]}

    thread = assert_thread_response(await create(api, user, body), 201)

    assert thread["version"] == 1
    assert thread["message_count"] == 3
    assert thread["last_message_at"] is not None
    assert parse_time(thread["last_message_at"]) == parse_time(thread["created_at"])
    listed = await api.request("GET", f"{URL}/{thread['id']}/messages", user=user)
    assert listed.status_code == 200
    data = listed.json()["data"]
    assert [m["seq"] for m in data] == [1, 2, 3]
    assert [(m["role"], m["content"]) for m in data] == contents
    assert all(m["thread_id"] == thread["id"] for m in data)
    assert await get_thread(api, user, thread["id"]) == thread


async def test_initial_message_role_defaults_to_user_and_metadata_is_kept(api: Api, user: str) -> None:
    body = {"messages": [{"content": "first"}, {"content": "second", "metadata": {"k": "v"}}]}
    thread = assert_thread_response(await create(api, user, body), 201)

    data = (await api.request("GET", f"{URL}/{thread['id']}/messages", user=user)).json()["data"]
    assert [m["role"] for m in data] == ["user", "user"]
    assert [m["metadata"] for m in data] == [{}, {"k": "v"}]


async def test_exactly_100_initial_messages_are_accepted(api: Api, user: str) -> None:
    body = {"messages": [{"content": f"m{i}"} for i in range(100)]}

    thread = assert_thread_response(await create(api, user, body), 201)

    assert thread["message_count"] == 100
    assert thread["version"] == 1
    page = (await api.request("GET", f"{URL}/{thread['id']}/messages", user=user, params={"limit": 100})).json()
    assert [m["seq"] for m in page["data"]] == list(range(1, 101))


async def test_more_than_100_initial_messages_is_422_and_creates_nothing(api: Api, user: str) -> None:
    body = {"title": "Too many", "messages": [{"content": f"m{i}"} for i in range(101)]}

    assert_validation_error(await create(api, user, body), "messages")
    await assert_nothing_created(api, user)


async def test_an_invalid_initial_message_is_422_and_creates_nothing(
    api: Api, user: str, subtests: pytest.Subtests
) -> None:
    for message, loc in [
        ({"role": "robot", "content": "x"}, "role"),
        ({"content": ""}, "content"),
        ({"content": 5}, "content"),
        ({"role": "user"}, "content"),
        ({"content": "x", "colour": "red"}, "colour"),
        ({"content": "x", "metadata": []}, "metadata"),
        ({"content": "x", "metadata": {"": 1}}, "metadata"),
        ({"content": "x" * 262_145}, "content"),
    ]:
        with subtests.test(repr(message)[:60]):
            body = {"title": "Partly bad", "messages": [{"content": "fine"}, message, {"content": "also fine"}]}

            assert_validation_error(await create(api, user, body), "messages", loc)
            await assert_nothing_created(api, user)


async def test_initial_message_content_at_the_limit_is_accepted(api: Api, user: str) -> None:
    thread = assert_thread_response(await create(api, user, {"messages": [{"content": "x" * 262_144}]}), 201)
    assert thread["message_count"] == 1


async def test_messages_must_be_a_list(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for messages in [{"content": "x"}, "x", 5]:
        with subtests.test(repr(messages)[:60]):
            assert_validation_error(await create(api, user, {"messages": messages}), "messages")
            await assert_nothing_created(api, user)


# --- title ----------------------------------------------------------------------------------------------------


async def test_title_is_trimmed(api: Api, user: str) -> None:
    thread = assert_thread_response(await create(api, user, {"title": "  \t Trip to Lisbon \n "}), 201)
    assert thread["title"] == "Trip to Lisbon"


async def test_title_of_1_to_256_characters_after_trimming_is_accepted(
    api: Api, user: str, subtests: pytest.Subtests
) -> None:
    for title in ["x", "é" * 256, "x" * 256, "  " + "y" * 256 + "  ", "🎉" * 256]:
        with subtests.test(repr(title)[:60]):
            thread = assert_thread_response(await create(api, user, {"title": title}), 201)
            assert thread["title"] == title.strip()


async def test_title_empty_after_trimming_or_too_long_is_422(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for title in ["", "   ", "\t\n", "x" * 257, "🎉" * 257]:
        with subtests.test(repr(title)[:60]):
            assert_validation_error(await create(api, user, {"title": title}), "title")
            await assert_nothing_created(api, user)


async def test_title_with_control_characters_is_422(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for title in ["a\x00b", "line\nbreak", "tab\there", "bell\x07", "del\x7f", "c1\x85control"]:
        with subtests.test(repr(title)[:60]):
            assert_validation_error(await create(api, user, {"title": title}), "title")
            await assert_nothing_created(api, user)


async def test_title_of_the_wrong_type_is_422(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for title in [5, 1.5, True, ["x"], {"x": 1}]:
        with subtests.test(repr(title)[:60]):
            assert_validation_error(await create(api, user, {"title": title}), "title")
            await assert_nothing_created(api, user)


async def test_explicit_null_title_creates_an_untitled_thread(api: Api, user: str) -> None:
    thread = assert_thread_response(await create(api, user, {"title": None}), 201)
    assert thread["title"] is None


# --- metadata -------------------------------------------------------------------------------------------------


async def test_metadata_keeps_any_json_values(api: Api, user: str) -> None:
    metadata = {"s": "text", "n": 5, "f": 1.5, "b": False, "z": None, "list": [1, "a"], "obj": {"deep": {"x": 1}}}
    thread = assert_thread_response(await create(api, user, {"metadata": metadata}), 201)

    assert thread["metadata"] == metadata
    assert (await get_thread(api, user, thread["id"]))["metadata"] == metadata


async def test_metadata_must_be_an_object(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for metadata in [[], ["a"], "text", 5, True]:
        with subtests.test(repr(metadata)[:60]):
            assert_validation_error(await create(api, user, {"metadata": metadata}), "metadata")
            await assert_nothing_created(api, user)


async def test_metadata_with_64_keys_is_accepted(api: Api, user: str) -> None:
    metadata = {f"k{i}": i for i in range(64)}
    thread = assert_thread_response(await create(api, user, {"metadata": metadata}), 201)
    assert thread["metadata"] == metadata


async def test_metadata_with_65_keys_is_422(api: Api, user: str) -> None:
    assert_validation_error(await create(api, user, {"metadata": {f"k{i}": i for i in range(65)}}), "metadata")
    await assert_nothing_created(api, user)


async def test_metadata_key_of_64_characters_is_accepted(api: Api, user: str) -> None:
    key = "k" * 64
    thread = assert_thread_response(await create(api, user, {"metadata": {key: 1}}), 201)
    assert thread["metadata"] == {key: 1}


async def test_metadata_key_empty_or_longer_than_64_is_422(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for key in ["", "k" * 65]:
        with subtests.test(repr(key)[:60]):
            assert_validation_error(await create(api, user, {"metadata": {key: 1}}), "metadata")
            await assert_nothing_created(api, user)


async def test_metadata_serialized_up_to_16_kib_is_accepted(api: Api, user: str) -> None:
    # {"k":"xxx…"} is 8 bytes of JSON around the value.
    metadata = {"k": "x" * (16 * 1024 - 8)}
    thread = assert_thread_response(await create(api, user, {"metadata": metadata}), 201)
    assert thread["metadata"] == metadata


async def test_metadata_serialized_over_16_kib_is_422(api: Api, user: str) -> None:
    metadata = {f"k{i}": "x" * 1000 for i in range(17)}
    assert_validation_error(await create(api, user, {"metadata": metadata}), "metadata")
    await assert_nothing_created(api, user)


async def test_explicit_null_metadata_on_create_means_empty(api: Api, user: str) -> None:
    thread = assert_thread_response(await create(api, user, {"metadata": None}), 201)
    assert thread["metadata"] == {}


# --- the body as a whole ----------------------------------------------------------------------------------------


async def test_unknown_field_is_422_with_its_location(api: Api, user: str) -> None:
    body = assert_validation_error(await create(api, user, {"title": "x", "titel": "typo"}), "body", "titel")
    assert body["type"] and body["detail"]
    await assert_nothing_created(api, user)


async def test_a_body_that_is_not_an_object_is_422(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for raw in ["[]", "null", '"thread"', "5"]:
        with subtests.test(repr(raw)[:60]):
            response = await api.request(
                "POST", URL, user=user, content=raw, headers={"content-type": "application/json"}
            )
            assert_problem(response, 422)
            await assert_nothing_created(api, user)


async def test_malformed_json_is_a_client_error_and_creates_nothing(api: Api, user: str) -> None:
    response = await api.request(
        "POST", URL, user=user, content='{"title": ', headers={"content-type": "application/json"}
    )
    assert response.status_code in (400, 422)
    assert_problem(response, response.status_code)
    await assert_nothing_created(api, user)


async def test_errors_do_not_echo_the_input(api: Api, user: str) -> None:
    secret = "s3cr3t-value-that-must-not-be-echoed"
    response = await create(api, user, {"title": 5, "unknown": secret})
    assert_problem(response, 422)
    assert secret not in response.text
