"""PATCH /api/threads/{id}: title, metadata as an RFC 7396 merge patch, status, versions and If-Match."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.conftest import Api, Factory
from tests.threads.helpers import (
    append,
    assert_problem,
    assert_thread_response,
    assert_validation_error,
    get_thread,
    parse_time,
    same_problem,
)

pytestmark = pytest.mark.through_pgbouncer

URL = "/api/threads"


async def patch(api: Api, user: str, thread_id: str, body: Any, **headers: str) -> Any:
    return await api.request("PATCH", f"{URL}/{thread_id}", user=user, json=body, headers=headers)


async def patched(api: Api, user: str, thread_id: str, body: Any, **headers: str) -> dict[str, Any]:
    return assert_thread_response(await patch(api, user, thread_id, body, **headers))


def assert_one_change(before: dict[str, Any], after: dict[str, Any]) -> None:
    assert after["version"] == before["version"] + 1
    assert parse_time(after["updated_at"]) > parse_time(before["updated_at"])
    assert after["created_at"] == before["created_at"]


# --- title ----------------------------------------------------------------------------------------------------


async def test_setting_the_title_is_one_change(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread()

    after = await patched(api, user, before["id"], {"title": "Trip to Lisbon"})

    assert after["title"] == "Trip to Lisbon"
    assert_one_change(before, after)
    assert await get_thread(api, user, before["id"]) == after


async def test_patch_response_etag_is_the_new_version(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread()

    response = await patch(api, user, before["id"], {"title": "x"})

    assert response.headers["etag"] == '"2"'


async def test_title_is_trimmed(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread()
    assert (await patched(api, user, before["id"], {"title": "  Lisbon \t"}))["title"] == "Lisbon"


async def test_null_title_clears_it(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread(title="Old")

    after = await patched(api, user, before["id"], {"title": None})

    assert after["title"] is None
    assert_one_change(before, after)


async def test_invalid_title_is_422_and_changes_nothing(
    api: Api, user: str, create_thread: Factory, subtests: pytest.Subtests
) -> None:
    for title in ["", "   ", "x" * 257, "a\nb", "a\x00b", "\x1b[31mred", 5, ["x"]]:
        with subtests.test(repr(title)[:60]):
            before = await create_thread(title="Kept")

            assert_validation_error(await patch(api, user, before["id"], {"title": title}), "title")

            assert await get_thread(api, user, before["id"]) == before


async def test_title_of_256_characters_is_accepted(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread()
    assert (await patched(api, user, before["id"], {"title": "t" * 256}))["title"] == "t" * 256


# --- metadata merge patch ----------------------------------------------------------------------------------------


async def merge(api: Api, user: str, create_thread: Factory, stored: Any, patch_doc: Any) -> dict[str, Any]:
    before = await create_thread(metadata=stored)
    after = await patched(api, user, before["id"], {"metadata": patch_doc})
    assert (await get_thread(api, user, before["id"]))["metadata"] == after["metadata"]
    return after


async def test_metadata_keys_are_set_and_unnamed_keys_kept(api: Api, user: str, create_thread: Factory) -> None:
    after = await merge(api, user, create_thread, {"a": "1", "b": "2"}, {"b": "changed", "c": "3"})
    assert after["metadata"] == {"a": "1", "b": "changed", "c": "3"}


async def test_metadata_null_removes_a_key(api: Api, user: str, create_thread: Factory) -> None:
    after = await merge(api, user, create_thread, {"a": "1", "b": "2"}, {"a": None})
    assert after["metadata"] == {"b": "2"}


async def test_metadata_nested_objects_are_merged(api: Api, user: str, create_thread: Factory) -> None:
    stored = {"prefs": {"lang": "pt", "units": "metric", "deep": {"x": 1, "y": 2}}, "other": 1}
    after = await merge(api, user, create_thread, stored, {"prefs": {"lang": "en", "deep": {"y": 3}}})
    assert after["metadata"] == {"prefs": {"lang": "en", "units": "metric", "deep": {"x": 1, "y": 3}}, "other": 1}


async def test_metadata_nested_null_removes_a_nested_key(api: Api, user: str, create_thread: Factory) -> None:
    stored = {"prefs": {"lang": "pt", "units": "metric"}}
    after = await merge(api, user, create_thread, stored, {"prefs": {"lang": None}})
    assert after["metadata"] == {"prefs": {"units": "metric"}}


async def test_metadata_arrays_are_replaced_not_merged(api: Api, user: str, create_thread: Factory) -> None:
    after = await merge(api, user, create_thread, {"tags": ["a", "b", "c"]}, {"tags": ["z"]})
    assert after["metadata"] == {"tags": ["z"]}


async def test_metadata_object_replaces_a_scalar(api: Api, user: str, create_thread: Factory) -> None:
    after = await merge(api, user, create_thread, {"k": "scalar"}, {"k": {"now": "object"}})
    assert after["metadata"] == {"k": {"now": "object"}}


async def test_metadata_scalar_replaces_an_object(api: Api, user: str, create_thread: Factory) -> None:
    after = await merge(api, user, create_thread, {"k": {"was": "object"}}, {"k": 5})
    assert after["metadata"] == {"k": 5}


async def test_metadata_nulls_inside_a_new_object_are_dropped(api: Api, user: str, create_thread: Factory) -> None:
    # RFC 7396: patching {"a": {"b": null}} onto a document without "a" gives {"a": {}}.
    after = await merge(api, user, create_thread, {}, {"a": {"b": None, "c": "kept"}, "d": {"e": None}})
    assert after["metadata"] == {"a": {"c": "kept"}, "d": {}}


async def test_metadata_null_inside_arrays_is_kept(api: Api, user: str, create_thread: Factory) -> None:
    after = await merge(api, user, create_thread, {}, {"list": [None, {"x": None}]})
    assert after["metadata"] == {"list": [None, {"x": None}]}


async def test_metadata_change_is_one_change(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread(metadata={"a": "1"})
    after = await patched(api, user, before["id"], {"metadata": {"a": "2", "b": "3"}})
    assert_one_change(before, after)


async def test_metadata_null_is_422(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread(metadata={"a": "1"})

    assert_validation_error(await patch(api, user, before["id"], {"metadata": None}), "metadata")

    assert await get_thread(api, user, before["id"]) == before


async def test_metadata_that_is_not_an_object_is_422(
    api: Api, user: str, create_thread: Factory, subtests: pytest.Subtests
) -> None:
    for value in [[], ["a"], "text", 5, True]:
        with subtests.test(repr(value)[:60]):
            before = await create_thread(metadata={"a": "1"})

            assert_validation_error(await patch(api, user, before["id"], {"metadata": value}), "metadata")

            assert await get_thread(api, user, before["id"]) == before


async def test_merged_metadata_over_64_keys_is_422(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread(metadata={f"k{i}": i for i in range(60)})

    response = await patch(api, user, before["id"], {"metadata": {f"new{i}": i for i in range(5)}})

    assert_validation_error(response, "metadata")
    assert await get_thread(api, user, before["id"]) == before


async def test_merged_metadata_of_exactly_64_keys_is_accepted(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread(metadata={f"k{i}": i for i in range(64)})

    # Removing one key makes room for another in the same patch.
    after = await patched(api, user, before["id"], {"metadata": {"k0": None, "replacement": 0}})

    assert len(after["metadata"]) == 64
    assert "k0" not in after["metadata"]


async def test_merged_metadata_over_16_kib_is_422(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread(metadata={"a": "x" * 10_000})

    response = await patch(api, user, before["id"], {"metadata": {"b": "y" * 10_000}})

    assert_validation_error(response, "metadata")
    assert await get_thread(api, user, before["id"]) == before


async def test_patched_metadata_key_of_bad_length_is_422(
    api: Api, user: str, create_thread: Factory, subtests: pytest.Subtests
) -> None:
    for key in ["", "k" * 65]:
        with subtests.test(repr(key)[:60]):
            before = await create_thread()
            assert_validation_error(await patch(api, user, before["id"], {"metadata": {key: 1}}), "metadata")
            assert await get_thread(api, user, before["id"]) == before


# --- status -----------------------------------------------------------------------------------------------------


async def test_status_archived_sets_archived_at(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread()

    after = await patched(api, user, before["id"], {"status": "archived"})

    assert after["status"] == "archived"
    assert parse_time(after["archived_at"]) == parse_time(after["updated_at"])
    assert_one_change(before, after)


async def test_status_active_restores_and_clears_archived_at(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()
    archived = await patched(api, user, created["id"], {"status": "archived"})

    restored = await patched(api, user, created["id"], {"status": "active"})

    assert restored["status"] == "active"
    assert restored["archived_at"] is None
    assert_one_change(archived, restored)
    assert (await append(api, user, created["id"])).status_code == 201


async def test_restore_and_rename_in_one_patch(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(title="old")
    archived = await patched(api, user, created["id"], {"status": "archived"})

    after = await patched(api, user, created["id"], {"status": "active", "title": "new"})

    assert (after["status"], after["title"]) == ("active", "new")
    assert_one_change(archived, after)


async def test_renaming_an_archived_thread_is_409_until_restored(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(title="old")
    archived = await patched(api, user, created["id"], {"status": "archived"})

    assert_problem(await patch(api, user, created["id"], {"title": "new"}), 409)

    assert await get_thread(api, user, created["id"]) == archived


async def test_invalid_status_is_422(api: Api, user: str, create_thread: Factory, subtests: pytest.Subtests) -> None:
    for status in ["deleted", "ARCHIVED", "", None, 1]:
        with subtests.test(repr(status)[:60]):
            before = await create_thread()
            assert_validation_error(await patch(api, user, before["id"], {"status": status}), "status")
            assert await get_thread(api, user, before["id"]) == before


# --- versions ---------------------------------------------------------------------------------------------------


async def test_each_change_adds_one_to_the_version(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    for expected, body in enumerate(
        [{"title": "a"}, {"metadata": {"k": "v"}}, {"status": "archived"}, {"status": "active"}], start=2
    ):
        thread = await patched(api, user, thread["id"], body)
        assert thread["version"] == expected


async def test_one_patch_changing_several_fields_is_one_change(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread()

    after = await patched(api, user, before["id"], {"title": "t", "metadata": {"k": "v"}, "status": "archived"})

    assert (after["title"], after["metadata"], after["status"]) == ("t", {"k": "v"}, "archived")
    assert_one_change(before, after)


async def test_a_patch_that_changes_nothing_keeps_version_and_updated_at(
    api: Api, user: str, create_thread: Factory, subtests: pytest.Subtests
) -> None:
    for body in [
        {},
        {"title": "Same"},
        {"title": "  Same  "},
        {"metadata": {}},
        {"metadata": {"a": "1"}},
        {"metadata": {"absent": None}},
        {"metadata": {"nested": {"x": 1}}},
        {"status": "active"},
        {"title": "Same", "metadata": {"a": "1"}, "status": "active"},
    ]:
        with subtests.test(repr(body)[:60]):
            before = await create_thread(title="Same", metadata={"a": "1", "nested": {"x": 1}})

            after = await patched(api, user, before["id"], body)

            assert after == before
            assert await get_thread(api, user, before["id"]) == before


async def test_a_noop_patch_does_not_move_the_thread_in_the_list(api: Api, user: str, create_thread: Factory) -> None:
    older = await create_thread(title="older")
    newer = await create_thread(title="newer")

    await patched(api, user, older["id"], {"title": "older"})

    listed = (await api.request("GET", URL, user=user)).json()["data"]
    assert [t["id"] for t in listed] == [newer["id"], older["id"]]


async def test_unarchiving_an_active_thread_changes_nothing(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread()
    assert await patched(api, user, before["id"], {"status": "active"}) == before


async def test_archiving_an_archived_thread_changes_nothing(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()
    archived = await patched(api, user, created["id"], {"status": "archived"})

    assert await patched(api, user, created["id"], {"status": "archived"}) == archived


# --- If-Match ---------------------------------------------------------------------------------------------------


async def test_if_match_with_the_current_version_applies(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread()

    after = await patched(api, user, before["id"], {"title": "ok"}, **{"If-Match": '"1"'})

    assert after["title"] == "ok"
    assert after["version"] == 2


async def test_if_match_with_a_stale_version_is_412_and_changes_nothing(
    api: Api, user: str, create_thread: Factory
) -> None:
    created = await create_thread(title="first", metadata={"a": "1"})
    current = await patched(api, user, created["id"], {"title": "second"})

    response = await patch(api, user, created["id"], {"title": "third", "metadata": {"a": None}}, **{"If-Match": '"1"'})

    assert_problem(response, 412)
    assert await get_thread(api, user, created["id"]) == current


async def test_if_match_star_applies(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread()
    await patched(api, user, before["id"], {"title": "moved"})

    after = await patched(api, user, before["id"], {"title": "any"}, **{"If-Match": "*"})

    assert after["title"] == "any"
    assert after["version"] == 3


async def test_malformed_if_match_is_412_and_changes_nothing(
    api: Api, user: str, create_thread: Factory, subtests: pytest.Subtests
) -> None:
    # A digit other than ASCII's (superscript two: headers are Latin-1) and a number too long to parse were a 500.
    for header in ["1", "abc", '"abc"', 'W/"1"', '"1', '""', '"-1"', b'"\xb2"', '"' + "9" * 5000 + '"']:
        with subtests.test(repr(header)[:60]):
            before = await create_thread()

            assert_problem(await patch(api, user, before["id"], {"title": "x"}, **{"If-Match": header}), 412)

            assert await get_thread(api, user, before["id"]) == before


async def test_stale_if_match_is_412_even_when_the_patch_changes_nothing(
    api: Api, user: str, create_thread: Factory
) -> None:
    created = await create_thread(title="t")
    current = await patched(api, user, created["id"], {"title": "u"})

    assert_problem(await patch(api, user, created["id"], {"title": "u"}, **{"If-Match": '"1"'}), 412)
    assert await get_thread(api, user, created["id"]) == current


async def test_if_match_after_an_append_is_stale(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()
    assert (await append(api, user, created["id"])).status_code == 201

    assert_problem(await patch(api, user, created["id"], {"title": "x"}, **{"If-Match": '"1"'}), 412)
    assert (await patched(api, user, created["id"], {"title": "x"}, **{"If-Match": '"2"'}))["version"] == 3


async def test_if_match_is_not_required_by_default(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread()
    assert (await patched(api, user, before["id"], {"title": "no precondition"}))["version"] == 2


# --- ownership and the body as a whole --------------------------------------------------------------------------


async def test_patching_another_users_thread_is_404_and_changes_nothing(
    api: Api, user: str, other_user: str, create_thread: Factory
) -> None:
    created = await create_thread(title="mine", metadata={"a": "1"})

    foreign = await patch(api, other_user, created["id"], {"title": "stolen", "metadata": {"a": None}})
    missing = await patch(api, other_user, "thr_missing000000000000000", {"title": "stolen"})

    assert same_problem(assert_problem(foreign, 404), assert_problem(missing, 404))
    assert await get_thread(api, user, created["id"]) == created


async def test_if_match_on_another_users_thread_is_404_not_412(
    api: Api, other_user: str, create_thread: Factory
) -> None:
    created = await create_thread()
    assert_problem(await patch(api, other_user, created["id"], {"title": "x"}, **{"If-Match": '"9"'}), 404)


async def test_unknown_or_read_only_field_is_422_and_changes_nothing(
    api: Api, user: str, create_thread: Factory, subtests: pytest.Subtests
) -> None:
    for body in [{"titel": "typo"}, {"title": "x", "message_count": 5}, {"version": 9}]:
        with subtests.test(repr(body)[:60]):
            before = await create_thread(title="t")

            assert_problem(await patch(api, user, before["id"], body), 422)

            assert await get_thread(api, user, before["id"]) == before


async def test_a_patch_failing_on_one_field_applies_none(api: Api, user: str, create_thread: Factory) -> None:
    before = await create_thread(title="t", metadata={"a": "1"})

    response = await patch(api, user, before["id"], {"title": "valid", "metadata": {"": "bad key"}})

    assert_validation_error(response, "metadata")
    assert await get_thread(api, user, before["id"]) == before


# --- concurrency ------------------------------------------------------------------------------------------------


async def test_concurrent_metadata_patches_lose_no_key(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(metadata={"base": "kept"})

    responses = await asyncio.gather(*(patch(api, user, created["id"], {"metadata": {f"k{i}": i}}) for i in range(8)))

    assert [r.status_code for r in responses] == [200] * 8
    after = await get_thread(api, user, created["id"])
    assert after["metadata"] == {"base": "kept", **{f"k{i}": i for i in range(8)}}
    assert after["version"] == 9
    assert sorted(r.json()["version"] for r in responses) == list(range(2, 10))


async def test_concurrent_patches_with_one_if_match_let_exactly_one_win(
    api: Api, user: str, create_thread: Factory
) -> None:
    created = await create_thread()

    responses = await asyncio.gather(
        *(patch(api, user, created["id"], {"title": f"t{i}"}, **{"If-Match": '"1"'}) for i in range(6))
    )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] + [412] * 5
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert await get_thread(api, user, created["id"]) == winner
    assert winner["version"] == 2


async def test_changing_a_value_to_an_equal_value_of_another_json_type_is_a_change(
    api: Api, user: str, create_thread: Factory
) -> None:
    """1 and true (0 and false, 1 and 1.0) are equal in Python but different JSON: the patch must apply."""
    thread = await create_thread(metadata={"a": 1, "b": 0, "c": 1})
    response = await api.request(
        "PATCH", f"/api/threads/{thread['id']}", user=user, json={"metadata": {"a": True, "b": False, "c": 1.5}}
    )
    assert response.status_code == 200
    assert response.json()["metadata"] == {"a": True, "b": False, "c": 1.5}
    assert type(response.json()["metadata"]["a"]) is bool
    assert response.json()["version"] == 2
