"""PATCH /api/threads/{id} with current_message_id (API.md version 2, "Branches"): the branch switch descends to
the newest leaf, is one change with its event unless nothing moved, and follows the PATCH rules (422, 409 on an
archived thread, If-Match); and auto-rename titles the thread from the active path."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.conftest import Api, Factory, new_user
from tests.messages.branching import Tree, add, ids, walk
from tests.threads.helpers import (
    assert_problem,
    assert_thread_response,
    assert_validation_error,
    get_thread,
    parse_time,
    recorded_events,
    same_problem,
)
from threadstore.titles import summarize

URL = "/api/threads"
PYTHON = "How do I reverse a list in Python?"
LISBON = "Lisbon trip with kids in March: can you help me plan three days?"


async def switch(api: Api, user: str, thread_id: str, message_id: Any, **extra: Any) -> httpx.Response:
    headers = extra.pop("headers", {})
    body = {"current_message_id": message_id, **extra}
    return await api.request("PATCH", f"{URL}/{thread_id}", user=user, json=body, headers=headers)


async def tree_of(api: Api, user: str, thread_id: str) -> Tree:
    tree = Tree()
    tree.record(*await walk(api, user, thread_id, view="all", limit=100))
    return tree


async def bushy_thread(api: Api, user: str, create_thread: Factory) -> tuple[str, Tree, dict[str, str]]:
    """root ─┬─ a1 ─ a2 ─┬─ a3            (a3 made after everything else: the newest message)
             │           └─ a3'
             └─ b1 ─┬─ b2 ─ b3
                    └─ b2' (current)

    From root the descent goes to b1 (root's child created last), then b2' — not to a3, the newest leaf by time;
    from a2 it goes to a3, the child created last."""
    thread = await create_thread(messages=[{"content": "root"}, {"content": "a1"}, {"content": "a2"}])
    thread_id = thread["id"]
    tree = await tree_of(api, user, thread_id)
    names = {m["content"]: m["id"] for m in tree.by_seq()}
    a3_alt = await add(api, user, thread_id, "a3'", names["a2"])
    b1 = await add(api, user, thread_id, "b1", names["root"])
    b2 = await add(api, user, thread_id, "b2")
    b3 = await add(api, user, thread_id, "b3")
    b2_alt = await add(api, user, thread_id, "b2'", b1["id"])
    tree.record(a3_alt, b1, b2, b3, b2_alt)
    # a3 goes under a2 last: it is a2's newest child, but root's newest child is still b1.
    switched = assert_thread_response(await switch(api, user, thread_id, names["a2"]))
    assert switched["current_message_id"] == a3_alt["id"]
    a3 = await add(api, user, thread_id, "a3", names["a2"])
    tree.record(a3)
    back = assert_thread_response(await switch(api, user, thread_id, b2_alt["id"]))
    assert back["current_message_id"] == b2_alt["id"]
    names = {m["content"]: m["id"] for m in tree.by_seq()}
    return thread_id, tree, names


@pytest.mark.parametrize(
    ("target", "leaf"),
    [
        ("root", "b2'"),
        ("a1", "a3"),
        ("a2", "a3"),
        ("a3'", "a3'"),
        ("b1", "b2'"),
        ("b2", "b3"),
        ("b3", "b3"),
    ],
)
async def test_the_switch_stores_the_leaf_reached_by_the_child_created_last(
    api: Api, user: str, create_thread: Factory, target: str, leaf: str
) -> None:
    thread_id, tree, names = await bushy_thread(api, user, create_thread)
    before = await get_thread(api, user, thread_id)
    assert before["current_message_id"] == names["b2'"]
    await asyncio.sleep(0.002)  # timestamps have millisecond precision

    response = await switch(api, user, thread_id, names[target])

    after = assert_thread_response(response)
    assert after["current_message_id"] == names[leaf] == tree.newest_leaf_from(names[target])
    if leaf == "b2'":
        assert after == before, "nothing moved: no new version"
    else:
        assert after["version"] == before["version"] + 1
        assert response.headers["etag"] == f'"{after["version"]}"'
        assert parse_time(after["updated_at"]) > parse_time(before["updated_at"])
        assert after["message_count"] == before["message_count"] == len(tree.messages)
        assert after["last_message_at"] == before["last_message_at"]
    assert await get_thread(api, user, thread_id) == after
    listed = await walk(api, user, thread_id, limit=2)
    assert ids(listed) == tree.path_to(names[leaf])
    tree.check(listed)


async def test_the_switch_records_one_thread_updated_with_the_returned_thread(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread_id, _, names = await bushy_thread(api, user, create_thread)
    recorded = len(await recorded_events(api, user))

    moved = assert_thread_response(await switch(api, user, thread_id, names["a1"]))
    again = assert_thread_response(await switch(api, user, thread_id, names["a2"]))  # the same leaf, a3

    assert again == moved
    assert (await recorded_events(api, user))[recorded:] == [("thread.updated", moved)]


async def test_a_switch_to_the_current_leaf_or_an_ancestor_leading_to_it_changes_nothing(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread_id, _, names = await bushy_thread(api, user, create_thread)
    before = await get_thread(api, user, thread_id)
    recorded = await recorded_events(api, user)

    for target in ("b2'", "b1", "root"):
        assert assert_thread_response(await switch(api, user, thread_id, names[target])) == before

    assert await recorded_events(api, user) == recorded


async def test_the_switch_and_a_title_in_one_patch_are_one_change(api: Api, user: str, create_thread: Factory) -> None:
    thread_id, _, names = await bushy_thread(api, user, create_thread)
    before = await get_thread(api, user, thread_id)

    after = assert_thread_response(await switch(api, user, thread_id, names["b2"], title="Branches"))

    assert after["version"] == before["version"] + 1
    assert (after["title"], after["current_message_id"]) == ("Branches", names["b3"])


async def test_a_switch_to_null_is_422_and_changes_nothing(api: Api, user: str, create_thread: Factory) -> None:
    thread_id, _, _ = await bushy_thread(api, user, create_thread)
    before = await get_thread(api, user, thread_id)
    recorded = await recorded_events(api, user)

    assert_validation_error(await switch(api, user, thread_id, None), "body", "current_message_id")
    assert_validation_error(await switch(api, user, thread_id, None, title="x"), "body", "current_message_id")

    assert await get_thread(api, user, thread_id) == before
    assert await recorded_events(api, user) == recorded


@pytest.mark.parametrize("where", ["unknown", "another-thread", "another-user", "garbage", "empty", "number"])
async def test_a_switch_to_a_message_not_of_the_thread_is_422_that_tells_nothing(
    api: Api, user: str, create_thread: Factory, where: str
) -> None:
    thread_id, _, _ = await bushy_thread(api, user, create_thread)
    if where == "another-thread":
        named: Any = (await create_thread(messages=[{"content": "elsewhere"}]))["current_message_id"]
    elif where == "another-user":
        named = (await api.create_thread(new_user(), messages=[{"content": "private"}]))["current_message_id"]
    else:
        named = {"unknown": "msg_" + "A" * 22, "garbage": "not a message id", "empty": "", "number": 7}[where]
    before = await get_thread(api, user, thread_id)
    recorded = await recorded_events(api, user)

    response = await switch(api, user, thread_id, named, title="not applied")
    baseline = await switch(api, user, thread_id, "msg_" + "B" * 22)

    body = assert_validation_error(response, "body", "current_message_id")
    if where != "number":
        assert same_problem(body, assert_problem(baseline, 422))
        assert not named or named not in response.text
    assert await get_thread(api, user, thread_id) == before
    assert await recorded_events(api, user) == recorded


async def test_a_switch_on_a_thread_without_messages_is_422(api: Api, user: str, create_thread: Factory) -> None:
    empty = await create_thread()
    other = await create_thread(messages=[{"content": "elsewhere"}])

    response = await switch(api, user, empty["id"], other["current_message_id"])

    assert_validation_error(response, "body", "current_message_id")
    assert await get_thread(api, user, empty["id"]) == empty


async def test_a_switch_on_an_archived_thread_is_409(api: Api, user: str, create_thread: Factory) -> None:
    thread_id, _, names = await bushy_thread(api, user, create_thread)
    archived = assert_thread_response(await api.request("DELETE", f"{URL}/{thread_id}", user=user))
    recorded = await recorded_events(api, user)

    assert_problem(await switch(api, user, thread_id, names["a1"]), 409)
    assert_problem(await switch(api, user, thread_id, names["a1"], status="archived"), 409)

    assert await get_thread(api, user, thread_id) == archived
    assert await recorded_events(api, user) == recorded


async def test_a_switch_in_the_patch_that_restores_the_thread_is_one_change(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread_id, tree, names = await bushy_thread(api, user, create_thread)
    archived = assert_thread_response(await api.request("DELETE", f"{URL}/{thread_id}", user=user))
    recorded = await recorded_events(api, user)

    restored = assert_thread_response(await switch(api, user, thread_id, names["a1"], status="active"))

    assert restored["status"] == "active" and restored["archived_at"] is None
    assert restored["current_message_id"] == names["a3"]
    assert restored["version"] == archived["version"] + 1
    assert await recorded_events(api, user) == [*recorded, ("thread.updated", restored)]
    assert ids(await walk(api, user, thread_id)) == tree.path_to(names["a3"])


async def test_the_switch_honours_if_match(api: Api, user: str, create_thread: Factory) -> None:
    thread_id, _, names = await bushy_thread(api, user, create_thread)
    before = await get_thread(api, user, thread_id)
    stale = {"If-Match": f'"{before["version"] - 1}"'}

    assert_problem(await switch(api, user, thread_id, names["a1"], headers=stale), 412)
    assert await get_thread(api, user, thread_id) == before

    fresh = {"If-Match": f'"{before["version"]}"'}
    after = assert_thread_response(await switch(api, user, thread_id, names["a1"], headers=fresh))
    assert after["current_message_id"] == names["a3"] and after["version"] == before["version"] + 1


async def test_another_user_cannot_switch_the_branch(api: Api, user: str, create_thread: Factory) -> None:
    thread_id, _, names = await bushy_thread(api, user, create_thread)
    before = await get_thread(api, user, thread_id)
    stranger = new_user()

    theirs = await switch(api, stranger, thread_id, names["a1"])
    missing = await switch(api, stranger, "thr_doesnotexist", names["a1"])

    assert same_problem(assert_problem(theirs, 404), assert_problem(missing, 404))
    assert await get_thread(api, user, thread_id) == before


async def test_appends_after_a_switch_follow_the_new_current_message(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread_id, tree, names = await bushy_thread(api, user, create_thread)
    assert_thread_response(await switch(api, user, thread_id, names["b2"]))

    follow = await add(api, user, thread_id, "after b3")

    assert follow["parent_id"] == names["b3"] and follow["depth"] == 5
    tree.record(follow)
    assert ids(await walk(api, user, thread_id)) == tree.path_to(follow["id"])


# --- auto-rename ------------------------------------------------------------------------------------------------


async def rename(api: Api, user: str, thread_id: str) -> dict[str, Any]:
    response = await api.request("POST", f"{URL}/{thread_id}/auto-rename", user=user)
    assert response.headers.get("x-title-source") == "fallback", response.text
    return assert_thread_response(response)


def test_the_two_texts_title_differently() -> None:
    # The rename tests below tell the sources apart by their titles.
    assert summarize(PYTHON) != summarize(LISBON)


async def test_auto_rename_reads_the_first_user_message_of_the_active_path_after_a_root_edit(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread(messages=[{"content": PYTHON}, {"content": "Use reversed().", "role": "assistant"}])
    first_root = (await walk(api, user, thread["id"]))[0]
    edited = await add(api, user, thread["id"], LISBON, None)
    await add(api, user, thread["id"], "Day one: Belém.", role="assistant")

    assert (await rename(api, user, thread["id"]))["title"] == summarize(LISBON)

    assert_thread_response(await switch(api, user, thread["id"], first_root["id"]))
    assert (await rename(api, user, thread["id"]))["title"] == summarize(PYTHON)

    assert_thread_response(await switch(api, user, thread["id"], edited["id"]))
    assert (await rename(api, user, thread["id"]))["title"] == summarize(LISBON)


async def test_auto_rename_reads_an_edited_first_user_message_below_a_system_root(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread(
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"content": PYTHON},
            {"role": "assistant", "content": "Use reversed()."},
        ]
    )
    system, python, _ = await walk(api, user, thread["id"])
    await add(api, user, thread["id"], LISBON, system["id"])

    assert (await rename(api, user, thread["id"]))["title"] == summarize(LISBON)

    assert_thread_response(await switch(api, user, thread["id"], python["id"]))
    assert (await rename(api, user, thread["id"]))["title"] == summarize(PYTHON)


async def test_auto_rename_of_an_active_path_without_a_user_message_is_422(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread(messages=[{"content": PYTHON}, {"role": "assistant", "content": "Use reversed()."}])
    await add(api, user, thread["id"], "You are terse.", None, role="system")

    response = await api.request("POST", f"{URL}/{thread['id']}/auto-rename", user=user)

    assert_problem(response, 422)
    assert (await get_thread(api, user, thread["id"]))["title"] is None
