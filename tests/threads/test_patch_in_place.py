"""PATCH as one UPDATE on PostgreSQL (threads/repository.py `merge_in_place`): a flat merge patch and the
metadata limits run in SQL there, so they must agree with the Python path they stand in for, which still
decides every case the UPDATE does not apply (nested patches, floats, stale versions, no change, limits)."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
import pytest

from tests.conftest import Api, Factory
from tests.threads.helpers import assert_thread_response, recorded_events, statements
from threadstore.errors import Unprocessable
from threadstore.limits import Limits
from threadstore.threads.merge_patch import merge_patch

pytestmark = pytest.mark.postgres_only

URL = "/api/threads"
SEED = 20261202


async def test_a_flat_patch_is_one_statement_that_also_records_its_event(
    api: Api, user: str, create_thread: Factory
) -> None:
    created = await create_thread(title="t", metadata={"keep": {"a": 1, "b": 2}, "drop": "x", "n": 1})
    patch = {"title": "new", "metadata": {"drop": None, "add": True, "n": [1, "é\n", {"deep": None}]}}

    with statements(api) as seen:
        response = await api.request("PATCH", f"{URL}/{created['id']}", user=user, json=patch)

    thread = assert_thread_response(response)
    assert len(seen) == 1, seen
    assert (thread["title"], thread["version"]) == ("new", 2)
    assert thread["metadata"] == merge_patch(created["metadata"], patch["metadata"])
    assert await recorded_events(api, user) == [("thread.created", created), ("thread.updated", thread)]


async def test_a_nested_patch_is_merged_on_the_row_read(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(metadata={"keep": {"a": 1, "b": 2}})
    patch = {"metadata": {"keep": {"b": None, "c": 3}}}

    with statements(api) as seen:
        response = await api.request("PATCH", f"{URL}/{created['id']}", user=user, json=patch)

    thread = assert_thread_response(response)
    assert [statement.split()[0] for statement in seen] == ["SELECT", "WITH"]  # read, then compare-and-set
    assert thread["metadata"] == {"keep": {"a": 1, "c": 3}}
    assert await recorded_events(api, user) == [("thread.created", created), ("thread.updated", thread)]


async def test_a_create_without_messages_is_one_statement(api: Api, user: str) -> None:
    with statements(api) as seen:
        response = await api.request("POST", URL, user=user, json={"title": "t", "metadata": {"a": "b"}})
    created = assert_thread_response(response, status=201)
    assert len(seen) == 1, seen
    assert await recorded_events(api, user) == [("thread.created", created)]


async def test_what_one_update_does_not_apply_is_decided_on_the_row(
    api: Api, user: str, create_thread: Factory
) -> None:
    """Each case runs the one UPDATE first (it matches nothing), then the general path: same answers as ever."""
    thread = await create_thread(title="t", metadata={"a": "1"})
    path = f"{URL}/{thread['id']}"

    stale = await api.request("PATCH", path, user=user, json={"title": "x"}, headers={"If-Match": '"7"'})
    same = await api.request("PATCH", path, user=user, json={"title": "t", "metadata": {"a": "1"}})
    missing = await api.request("PATCH", f"{URL}/thr_missing", user=user, json={"title": "x"})
    too_many = await api.request("PATCH", path, user=user, json={"metadata": {f"k{i}": i for i in range(65)}})
    await api.request("PATCH", path, user=user, json={"status": "archived"})
    frozen = await api.request("PATCH", path, user=user, json={"title": "x"})

    assert [r.status_code for r in (stale, same, missing, too_many, frozen)] == [412, 200, 404, 422, 409]
    assert same.json()["version"] == 1
    types = [event_type for event_type, _ in await recorded_events(api, user)]
    assert types == ["thread.created", "thread.updated"]  # the archive only


async def test_metadata_exactly_at_the_size_limit_is_accepted(api: Api, user: str, create_thread: Factory) -> None:
    """The SQL size bound is conservative (jsonb's text has spaces); the Python path accepts what fits."""
    limit = api.app.state.settings.max_metadata_bytes
    thread = await create_thread()
    filler = "x" * (limit - len(orjson.dumps({"k": ""})))
    assert len(orjson.dumps({"k": filler})) == limit

    fits = await api.request("PATCH", f"{URL}/{thread['id']}", user=user, json={"metadata": {"k": filler}})
    over = await api.request("PATCH", f"{URL}/{thread['id']}", user=user, json={"metadata": {"k": filler + "y"}})

    assert assert_thread_response(fits)["metadata"] == {"k": filler}
    assert over.status_code == 422


def _value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(["object", "array", "string", "string", "int", "bool", "null"])
    if depth >= 2 and kind in ("object", "array"):
        kind = "string"
    if kind == "object":
        return {k: _value(rng, depth + 1) for k in rng.sample(["a", "é", "long key", "\n", "0"], rng.randint(0, 3))}
    if kind == "array":
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if kind == "string":
        return "".join(rng.choice(["a", "é", '"', "\\", "\t", "\x01", "😀", " "]) for _ in range(rng.randint(0, 6)))
    if kind == "int":
        return rng.choice([0, -1, 7, 2**53 + 1, -(2**63), 2**64 - 1])
    return None if kind == "null" else rng.choice([True, False])


def _flat_patch(rng: random.Random) -> dict[str, Any]:
    patch = {}
    for key in rng.sample(["a", "b", "c", "e", "é"], rng.randint(1, 4)):
        value = _value(rng, 1)
        patch[key] = None if rng.random() < 0.3 else (value if not isinstance(value, dict) else [value])
    return patch


def _canonical(document: Any) -> str:
    return json.dumps(document, sort_keys=True)


async def test_random_flat_patches_merge_as_rfc_7396_says(api: Api, user: str, create_thread: Factory) -> None:
    rng = random.Random(SEED)
    for _ in range(40):
        stored = {k: _value(rng, 1) for k in rng.sample(["a", "b", "c", "d"], rng.randint(0, 4))}
        thread = await create_thread(metadata={k: v for k, v in stored.items() if v is not None})
        expected = thread["metadata"]
        for _ in range(3):
            patch = _flat_patch(rng)
            expected = merge_patch(expected, patch)
            with statements(api) as seen:
                response = await api.request("PATCH", f"{URL}/{thread['id']}", user=user, json={"metadata": patch})
            assert _canonical(assert_thread_response(response)["metadata"]) == _canonical(expected), patch
            assert len(seen) in (1, 2), seen  # applied by one UPDATE; or no change: that UPDATE, then a read


def _fits(limits: Limits, document: dict[str, Any]) -> bool:
    try:
        limits.metadata(document, ("body", "metadata"))
    except Unprocessable:
        return False
    return True


async def test_the_limits_at_their_edges_decide_as_the_python_check(
    api: Api, user: str, create_thread: Factory
) -> None:
    """The SQL size bound is conservative (jsonb's text has spaces): what fits exactly is still accepted, by
    the fallback; nothing over a limit gets through."""
    limits: Limits = api.app.state.limits
    base = len(orjson.dumps({"k": ""}))
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({}, {"k": "x" * (limits.metadata_bytes - base + delta)}) for delta in (-3, -1, 0, 1)
    ]
    cases += [({"a": "1"}, {"k": "x" * (limits.metadata_bytes - base - 8 + delta), "a": None}) for delta in (0, 1)]
    cases += [
        ({f"k{i}": i for i in range(limits.metadata_keys - 1)}, {"new": 1, "other": extra}) for extra in (None, 2)
    ]
    cases += [({}, {"k" * length: 1}) for length in (limits.metadata_key_chars, limits.metadata_key_chars + 1)]
    for stored, patch in cases:
        thread = await create_thread(metadata=stored)
        expected = merge_patch(thread["metadata"], patch)
        response = await api.request("PATCH", f"{URL}/{thread['id']}", user=user, json={"metadata": patch})
        if _fits(limits, expected):
            assert _canonical(assert_thread_response(response)["metadata"]) == _canonical(expected)
        else:
            assert response.status_code == 422, (len(orjson.dumps(expected)), response.text)
