"""Branches (API.md version 2): appends with parent_id, the tree fields of a message, the listings of a tree
(active path, leaf=, siblings_of=, view=all), their cursors, and GET of one message. The expected answers come
from a model of the tree built from the parent_id links the responses gave (tests/messages/branching.py)."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from tests.conftest import Api, Factory, new_user
from tests.http.problems import assert_problem, message_count
from tests.messages.branching import (
    ABSENT,
    MESSAGE_FIELDS,
    TREE_FIELDS,
    Tree,
    add,
    ids,
    messages_url,
    page,
    post_message,
    thread_of,
    walk,
)
from tests.threads.helpers import recorded_events, same_problem


async def all_messages(api: Api, user: str, thread_id: str) -> list[dict[str, Any]]:
    return await walk(api, user, thread_id, view="all", limit=100)


async def tree_of(api: Api, user: str, thread_id: str) -> Tree:
    tree = Tree()
    tree.record(*await all_messages(api, user, thread_id))
    return tree


async def forked_thread(api: Api, user: str, create_thread: Factory) -> tuple[str, Tree]:
    """r → a1 → a2 → a3, then an edit of a1 (b1, sibling 2 of a1) continued by b2 — current b2."""
    thread = await create_thread(
        messages=[
            {"content": "root"},
            {"content": "a1", "role": "assistant"},
            {"content": "a2"},
            {"content": "a3", "role": "assistant"},
        ]
    )
    tree = await tree_of(api, user, thread["id"])
    root = tree.by_seq()[0]
    b1 = await add(api, user, thread["id"], "b1", root["id"], role="assistant")
    b2 = await add(api, user, thread["id"], "b2")
    tree.record(b1, b2)
    return thread["id"], tree


# --- the fields, and a thread without branches ------------------------------------------------------------------


async def test_a_thread_without_branches_answers_as_in_version_1_plus_the_tree_fields(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread(messages=[{"content": "one"}, {"content": "two", "role": "assistant"}])
    third = await add(api, user, thread["id"], "three")
    fourth = await add(api, user, thread["id"], "four", role="assistant")

    listed = await walk(api, user, thread["id"])
    assert [m["seq"] for m in listed] == [1, 2, 3, 4]
    assert [m["content"] for m in listed] == ["one", "two", "three", "four"]
    for i, message in enumerate(listed):
        assert message["depth"] == message["seq"]
        assert message["parent_id"] == (listed[i - 1]["id"] if i else None)
        assert (message["sibling_index"], message["sibling_count"]) == (1, 1)
    assert listed[2] == third and listed[3] == fourth
    assert await all_messages(api, user, thread["id"]) == listed
    assert await walk(api, user, thread["id"], order="desc", limit=3) == listed[::-1]
    after = await thread_of(api, user, thread["id"])
    assert after["current_message_id"] == fourth["id"]
    assert after["message_count"] == 4 and after["version"] == 3


async def test_a_thread_without_messages_has_no_current_message(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    assert thread["current_message_id"] is None
    assert (await thread_of(api, user, thread["id"]))["current_message_id"] is None
    first = await add(api, user, thread["id"], "first")
    assert (first["parent_id"], first["depth"], first["sibling_index"], first["sibling_count"]) == (None, 1, 1, 1)
    assert (await thread_of(api, user, thread["id"]))["current_message_id"] == first["id"]


async def test_initial_messages_form_a_chain_and_the_last_is_current(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread(messages=[{"content": f"m{i}"} for i in range(1, 6)])
    listed = await walk(api, user, thread["id"], limit=2)
    assert [m["content"] for m in listed] == ["m1", "m2", "m3", "m4", "m5"]
    assert [m["parent_id"] for m in listed] == [None, *ids(listed)[:-1]]
    assert [m["depth"] for m in listed] == [1, 2, 3, 4, 5]
    assert all((m["sibling_index"], m["sibling_count"]) == (1, 1) for m in listed)
    assert thread["current_message_id"] == listed[-1]["id"]
    assert thread["version"] == 1 and thread["message_count"] == 5


# --- appends ----------------------------------------------------------------------------------------------------


async def test_append_under_a_parent_that_has_children_opens_a_branch_and_makes_it_current(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread(messages=[{"content": "q"}, {"content": "answer 1", "role": "assistant"}])
    before = await thread_of(api, user, thread["id"])
    first, answer = await all_messages(api, user, thread["id"])

    regenerated = await add(api, user, thread["id"], "answer 2", first["id"], role="assistant")

    assert regenerated["parent_id"] == first["id"]
    assert regenerated["depth"] == 2 and regenerated["seq"] == 3
    assert (regenerated["sibling_index"], regenerated["sibling_count"]) == (2, 2)
    after = await thread_of(api, user, thread["id"])
    assert after["current_message_id"] == regenerated["id"]
    assert after["version"] == before["version"] + 1
    assert after["message_count"] == 3
    assert ids(await walk(api, user, thread["id"])) == [first["id"], regenerated["id"]]
    # The older sibling now counts two siblings too.
    shown = (await api.request("GET", f"{messages_url(thread['id'])}/{answer['id']}", user=user)).json()
    assert (shown["sibling_index"], shown["sibling_count"]) == (1, 2)


async def test_append_under_a_leaf_continues_it(api: Api, user: str, create_thread: Factory) -> None:
    thread_id, tree = await forked_thread(api, user, create_thread)
    a3 = next(m for m in tree.by_seq() if m["content"] == "a3")

    a4 = await add(api, user, thread_id, "a4", a3["id"])

    assert (a4["parent_id"], a4["depth"], a4["sibling_index"], a4["sibling_count"]) == (a3["id"], 5, 1, 1)
    tree.record(a4)
    assert (await thread_of(api, user, thread_id))["current_message_id"] == a4["id"]
    listed = await walk(api, user, thread_id)
    assert ids(listed) == tree.path_to(a4["id"])
    tree.check(listed)


async def test_append_with_a_null_parent_is_a_new_root(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread(messages=[{"content": "first question"}, {"content": "reply", "role": "assistant"}])
    tree = await tree_of(api, user, thread["id"])

    edited = await add(api, user, thread["id"], "edited question", None)
    second_edit = await add(api, user, thread["id"], "edited again", None)

    assert (edited["parent_id"], edited["depth"], edited["sibling_index"], edited["sibling_count"]) == (None, 1, 2, 2)
    assert (second_edit["parent_id"], second_edit["depth"], second_edit["sibling_index"]) == (None, 1, 3)
    assert second_edit["sibling_count"] == 3
    tree.record(edited, second_edit)
    after = await thread_of(api, user, thread["id"])
    assert after["current_message_id"] == second_edit["id"]
    assert after["message_count"] == 4 and after["version"] == 3
    assert ids(await walk(api, user, thread["id"])) == [second_edit["id"]]
    tree.check(await all_messages(api, user, thread["id"]))


async def test_append_without_parent_follows_the_current_message_of_a_branch(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread_id, tree = await forked_thread(api, user, create_thread)
    b2 = tree.by_seq()[-1]

    b3 = await add(api, user, thread_id, "b3", role="assistant")

    assert (b3["parent_id"], b3["depth"], b3["sibling_index"], b3["sibling_count"]) == (b2["id"], 4, 1, 1)
    tree.record(b3)
    listed = await walk(api, user, thread_id, limit=2)
    assert [m["content"] for m in listed] == ["root", "b1", "b2", "b3"]
    tree.check(listed)


async def test_message_count_counts_every_branch(api: Api, user: str, create_thread: Factory) -> None:
    thread_id, tree = await forked_thread(api, user, create_thread)
    await add(api, user, thread_id, "another root", None)
    thread = await thread_of(api, user, thread_id)
    assert thread["message_count"] == len(tree.messages) + 1 == 7
    assert len(await walk(api, user, thread_id)) == 1


async def test_a_parent_of_an_archived_thread_is_409_and_writes_nothing(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread_id, tree = await forked_thread(api, user, create_thread)
    archived = (await api.request("DELETE", f"/api/threads/{thread_id}", user=user)).json()
    root = tree.by_seq()[0]

    for parent in (root["id"], None):
        assert_problem(await post_message(api, user, thread_id, "x", parent), 409)

    assert await thread_of(api, user, thread_id) == archived
    assert await message_count(api, thread_id) == len(tree.messages)


async def _parent_elsewhere(api: Api, user: str, create_thread: Factory, where: str) -> str:
    """A parent_id that names no message of the test's thread."""
    if where == "another-thread":
        other = await create_thread(messages=[{"content": "elsewhere"}])
        return str(other["current_message_id"])
    if where == "another-user":
        stranger = new_user()
        theirs = await api.create_thread(stranger, messages=[{"content": "private"}])
        return str(theirs["current_message_id"])
    return {"unknown": "msg_" + "A" * 22, "garbage": "not a message id", "empty": ""}[where]


WHERE = ["unknown", "another-thread", "another-user", "garbage", "empty"]


@pytest.mark.parametrize("where", WHERE)
async def test_a_parent_that_is_not_a_message_of_the_thread_is_422_that_tells_nothing(
    api: Api, user: str, create_thread: Factory, where: str
) -> None:
    thread_id, tree = await forked_thread(api, user, create_thread)
    before = await thread_of(api, user, thread_id)
    parent = await _parent_elsewhere(api, user, create_thread, where)

    response = await post_message(api, user, thread_id, "x", parent)
    unknown = await post_message(
        api, user, thread_id, "x", await _parent_elsewhere(api, user, create_thread, "unknown")
    )

    body = assert_problem(response, 422)
    assert [error["loc"] for error in body["errors"]] == [["body", "parent_id"]]
    assert parent not in response.text or not parent, "the problem must not echo what the id names"
    assert same_problem(body, assert_problem(unknown, 422))
    assert await thread_of(api, user, thread_id) == before
    assert await message_count(api, thread_id) == len(tree.messages)


@pytest.mark.parametrize("parent", [5, True, ["msg"], {"id": "x"}])
async def test_a_parent_id_of_another_type_is_422(api: Api, user: str, create_thread: Factory, parent: Any) -> None:
    thread = await create_thread(messages=[{"content": "q"}])
    response = await post_message(api, user, thread["id"], "x", parent)
    body = assert_problem(response, 422)
    assert any(error["loc"][:2] == ["body", "parent_id"] for error in body["errors"]), body
    assert await message_count(api, thread["id"]) == 1


# --- events -----------------------------------------------------------------------------------------------------


async def test_message_created_events_carry_the_tree_fields_of_the_response(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread(messages=[{"content": "q"}, {"content": "a", "role": "assistant"}])
    first = (await all_messages(api, user, thread["id"]))[0]

    created = [
        await add(api, user, thread["id"], "follow-up"),
        await add(api, user, thread["id"], "regenerated", first["id"], role="assistant"),
        await add(api, user, thread["id"], "third answer", first["id"], role="assistant"),
        await add(api, user, thread["id"], "after the third"),
        await add(api, user, thread["id"], "new root", None),
        await add(api, user, thread["id"], "under the new root"),
    ]

    recorded = await recorded_events(api, user)
    assert [event_type for event_type, _ in recorded] == ["thread.created"] + ["message.created"] * len(created)
    assert [data for _, data in recorded[1:]] == created
    assert [tuple(m[f] for f in TREE_FIELDS[1:]) for m in created] == [
        (3, 1, 1),
        (2, 2, 2),
        (2, 3, 3),
        (3, 1, 1),
        (1, 2, 2),
        (2, 1, 1),
    ]


async def test_concurrent_appends_of_every_kind_keep_the_tree_consistent(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread(messages=[{"content": "root"}, {"content": "reply", "role": "assistant"}])
    root = (await all_messages(api, user, thread["id"]))[0]
    kinds = [root["id"], None, ABSENT] * 8

    responses = await asyncio.gather(
        *(post_message(api, user, thread["id"], f"m{i}", parent) for i, parent in enumerate(kinds))
    )

    assert [r.status_code for r in responses] == [201] * len(kinds), [r.text for r in responses if r.status_code != 201]
    created = sorted((r.json() for r in responses), key=lambda m: m["seq"])
    assert [m["seq"] for m in created] == list(range(3, 3 + len(kinds)))
    tree = await tree_of(api, user, thread["id"])
    every = tree.by_seq()
    tree.check(every)
    for message in created:
        # Placed where its request asked, and the current message as of its commit for an absent parent_id.
        parent = kinds[int(message["content"][1:])]
        if parent is ABSENT:
            assert message["parent_id"] == every[message["seq"] - 2]["id"], message
        else:
            assert message["parent_id"] == parent, message
        assert message["depth"] == tree.expected(message["id"])["depth"]
        assert message["sibling_index"] == tree.expected(message["id"])["sibling_index"]
        # As of its response: its family had at least as many members then, and at most as many as now.
        assert message["sibling_index"] <= message["sibling_count"] <= tree.expected(message["id"])["sibling_count"]
    after = await thread_of(api, user, thread["id"])
    assert after["current_message_id"] == created[-1]["id"]
    assert after["message_count"] == len(every) and after["version"] == 1 + len(kinds)
    events = [data for event_type, data in await recorded_events(api, user) if event_type == "message.created"]
    assert sorted(events, key=lambda m: m["seq"]) == created


# --- idempotency ------------------------------------------------------------------------------------------------


async def test_an_append_with_parent_id_replays_its_first_answer(api: Api, user: str, create_thread: Factory) -> None:
    thread_id, tree = await forked_thread(api, user, create_thread)
    root = tree.by_seq()[0]
    body = {"content": "c1", "role": "assistant", "parent_id": root["id"]}
    headers = {"Idempotency-Key": "branch-1"}

    first = await api.request("POST", messages_url(thread_id), user=user, json=body, headers=headers)
    assert first.status_code == 201, first.text
    # The tree moves on before the repeat: the replay is still the first answer, not a recomputation.
    await add(api, user, thread_id, "c2", root["id"])
    after = await thread_of(api, user, thread_id)
    again = await api.request("POST", messages_url(thread_id), user=user, json=body, headers=headers)

    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    assert (first.json()["sibling_index"], first.json()["sibling_count"]) == (3, 3)
    assert await thread_of(api, user, thread_id) == after
    assert await message_count(api, thread_id) == len(tree.messages) + 2


@pytest.mark.parametrize(
    ("first_parent", "second_parent"),
    [(ABSENT, None), (None, ABSENT), ("root", None), ("root", ABSENT), ("root", "leaf")],
    ids=["absent-then-null", "null-then-absent", "id-then-null", "id-then-absent", "id-then-another-id"],
)
async def test_one_key_with_another_parent_id_is_422(
    api: Api, user: str, create_thread: Factory, first_parent: Any, second_parent: Any
) -> None:
    thread_id, tree = await forked_thread(api, user, create_thread)
    named = {"root": tree.by_seq()[0]["id"], "leaf": tree.by_seq()[-1]["id"]}
    headers = {"Idempotency-Key": "parent-choice"}

    def body(parent: Any) -> dict[str, Any]:
        if parent is ABSENT:
            return {"content": "same"}
        return {"content": "same", "parent_id": named.get(parent) if parent else None}

    first = await api.request("POST", messages_url(thread_id), user=user, json=body(first_parent), headers=headers)
    assert first.status_code == 201, first.text
    after = await thread_of(api, user, thread_id)
    second = await api.request("POST", messages_url(thread_id), user=user, json=body(second_parent), headers=headers)

    assert_problem(second, 422)
    assert await thread_of(api, user, thread_id) == after


# --- the active path --------------------------------------------------------------------------------------------


async def build_edited_path(api: Api, user: str, create_thread: Factory, edits: int = 20) -> tuple[str, Tree]:
    """A conversation edited `edits` times near its end, each edit forking a message that an earlier edit put on
    the path (a fork's fork, and so on), plus side branches off older messages that are left behind. Its active
    path crosses about as many branches as there were edits: jump pointers are needed to walk it."""
    rng = random.Random(16)
    thread = await create_thread(
        messages=[{"content": "q0"}, {"content": "a0", "role": "assistant"}, {"content": "q1"}]
    )
    thread_id = thread["id"]
    tree = await tree_of(api, user, thread_id)
    current = str(thread["current_message_id"])
    for edit in range(edits):
        path = tree.path_to(current)
        parent = path[max(0, len(path) - 1 - rng.randint(1, 3))]
        made = [await add(api, user, thread_id, f"edit {edit}", parent)]
        for follow in range(rng.randint(2, 4)):
            made.append(await add(api, user, thread_id, f"edit {edit}.{follow}", role="assistant"))
        tree.record(*made)
        current = made[-1]["id"]
        if edit % 4 == 3:
            # A side branch off an older message, then back to the path's leaf (a leaf stays itself).
            side_parent = rng.choice(tree.by_seq()[: len(tree.messages) // 2])["id"]
            side = [await add(api, user, thread_id, f"side {edit}", side_parent)]
            side.append(await add(api, user, thread_id, f"side {edit}.1"))
            tree.record(*side)
            response = await api.request(
                "PATCH", f"/api/threads/{thread_id}", user=user, json={"current_message_id": current}
            )
            assert response.status_code == 200, response.text
            assert response.json()["current_message_id"] == current
    path = tree.path_to(current)
    forks_on_path = sum(1 for m in path if tree.expected(m)["sibling_index"] > 1)
    assert forks_on_path >= edits // 2, f"the tree is too tame to exercise the jump pointers: {forks_on_path} forks"
    return thread_id, tree


@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_the_active_path_of_a_much_edited_thread_pages_in_threes(
    api: Api, user: str, create_thread: Factory, order: str
) -> None:
    thread_id, tree = await build_edited_path(api, user, create_thread)
    thread = await thread_of(api, user, thread_id)
    expected = tree.path_to(thread["current_message_id"])

    listed = await walk(api, user, thread_id, limit=3, order=order)

    assert ids(listed) == (expected if order == "asc" else expected[::-1])
    tree.check(listed)
    assert thread["message_count"] == len(tree.messages)
    assert tree.leaves()[-1] != thread["current_message_id"], "the newest message is on a side branch"


async def test_leaf_lists_the_path_to_any_message_in_both_orders(api: Api, user: str, create_thread: Factory) -> None:
    thread_id, tree = await build_edited_path(api, user, create_thread, edits=12)
    every = tree.by_seq()
    targets = tree.leaves() + [m["id"] for m in every[:: max(1, len(every) // 8)]]

    for target in targets:
        expected = tree.path_to(target)
        for order in ("asc", "desc"):
            listed = await walk(api, user, thread_id, leaf=target, limit=3, order=order)
            assert ids(listed) == (expected if order == "asc" else expected[::-1]), (target, order)
            tree.check(listed)


async def test_view_all_lists_every_message_by_seq(api: Api, user: str, create_thread: Factory) -> None:
    thread_id, tree = await build_edited_path(api, user, create_thread, edits=6)
    expected = ids(tree.by_seq())

    for order in ("asc", "desc"):
        listed = await walk(api, user, thread_id, view="all", limit=3, order=order)
        assert ids(listed) == (expected if order == "asc" else expected[::-1])
        tree.check(listed)
    assert [m["seq"] for m in tree.by_seq()] == list(range(1, len(expected) + 1))


async def test_every_listing_shows_gapless_sibling_indexes_and_current_counts(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread_id, tree = await build_edited_path(api, user, create_thread, edits=8)
    for _ in range(3):
        tree.record(await add(api, user, thread_id, "another root", None))

    every = await all_messages(api, user, thread_id)
    tree.check(every)
    by_parent: dict[str | None, list[dict[str, Any]]] = {}
    for message in every:
        by_parent.setdefault(message["parent_id"], []).append(message)
    for family in by_parent.values():
        assert [m["sibling_index"] for m in family] == list(range(1, len(family) + 1))
        assert {m["sibling_count"] for m in family} == {len(family)}
    for message in every:
        tree.check(await walk(api, user, thread_id, siblings_of=message["id"], limit=2))
    tree.check(await walk(api, user, thread_id))


async def test_siblings_of_pages_by_sibling_index_in_both_orders(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread(messages=[{"content": "question"}, {"content": "answer 1", "role": "assistant"}])
    tree = await tree_of(api, user, thread["id"])
    question = tree.by_seq()[0]
    for n in range(2, 8):
        tree.record(await add(api, user, thread["id"], f"answer {n}", question["id"], role="assistant"))
        # Under one of them a deeper message, which is nobody's sibling here.
        if n == 4:
            tree.record(await add(api, user, thread["id"], "follow-up"))
    answers = tree.children(question["id"])
    assert len(answers) == 7

    for member in (answers[0], answers[3], answers[-1]):
        asc = await walk(api, user, thread["id"], siblings_of=member["id"], limit=3)
        desc = await walk(api, user, thread["id"], siblings_of=member["id"], limit=3, order="desc")
        assert ids(asc) == ids(answers)
        assert ids(desc) == ids(answers)[::-1]
        assert [m["sibling_index"] for m in asc] == list(range(1, 8))
        tree.check(asc + desc)

    follow_up = next(m for m in tree.by_seq() if m["content"] == "follow-up")
    only = await walk(api, user, thread["id"], siblings_of=follow_up["id"])
    assert [m["content"] for m in only] == ["follow-up"]
    roots = await walk(api, user, thread["id"], siblings_of=question["id"])
    assert ids(roots) == [question["id"]]


async def test_siblings_of_a_root_lists_the_roots(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread(messages=[{"content": "v1"}, {"content": "reply", "role": "assistant"}])
    tree = await tree_of(api, user, thread["id"])
    for n in range(2, 6):
        tree.record(await add(api, user, thread["id"], f"v{n}", None))

    for order in ("asc", "desc"):
        listed = await walk(api, user, thread["id"], siblings_of=tree.by_seq()[0]["id"], limit=2, order=order)
        expected = [m["id"] for m in tree.children(None)]
        assert ids(listed) == (expected if order == "asc" else expected[::-1])
        tree.check(listed)


@pytest.mark.parametrize("switch", ["edit", "new-root"])
async def test_a_cursor_keeps_the_path_of_its_first_page_across_a_branch_switch(
    api: Api, user: str, create_thread: Factory, switch: str
) -> None:
    thread = await create_thread(messages=[{"content": f"a{i}"} for i in range(1, 7)])
    tree = await tree_of(api, user, thread["id"])
    a = tree.by_seq()
    a_path = ids(a)
    first_asc = await page(api, user, thread["id"], limit=2)
    first_desc = await page(api, user, thread["id"], limit=2, order="desc")

    # A branch switch between pages: an edit of a3 (b3 → b4 → b5 → b6), or a new root continued as deep
    # (b1 → … → b6), becomes current.
    fork = a[1]["id"] if switch == "edit" else None
    made = [await add(api, user, thread["id"], "b", fork)]
    for depth in range(made[0]["depth"] + 1, 7):
        made.append(await add(api, user, thread["id"], f"b{depth}"))
    tree.record(*made)
    assert (await thread_of(api, user, thread["id"]))["current_message_id"] == made[-1]["id"]

    rest_asc = await walk(api, user, thread["id"], limit=2, cursor=first_asc["next_cursor"])
    rest_desc = await walk(api, user, thread["id"], limit=2, order="desc", cursor=first_desc["next_cursor"])

    assert ids(first_asc["data"] + rest_asc) == a_path
    assert ids(first_desc["data"] + rest_desc) == a_path[::-1]
    # The first pages were read before the switch added siblings: their sibling_count was right then.
    tree.check(rest_asc + rest_desc)
    # And a fresh listing shows the new path.
    assert ids(await walk(api, user, thread["id"], limit=2)) == tree.path_to(made[-1]["id"])


async def test_a_cursor_keeps_its_path_when_patch_switches_between_pages(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread_id, tree = await build_edited_path(api, user, create_thread, edits=6)
    old_leaf = (await thread_of(api, user, thread_id))["current_message_id"]
    old_path = tree.path_to(old_leaf)
    other_leaf = next(leaf for leaf in tree.leaves() if leaf != old_leaf and len(tree.path_to(leaf)) > 3)
    first_asc = await page(api, user, thread_id, limit=3)
    first_desc = await page(api, user, thread_id, limit=3, order="desc")

    response = await api.request(
        "PATCH", f"/api/threads/{thread_id}", user=user, json={"current_message_id": other_leaf}
    )
    assert response.status_code == 200, response.text
    assert response.json()["current_message_id"] == other_leaf

    rest_asc = await walk(api, user, thread_id, limit=3, cursor=first_asc["next_cursor"])
    rest_desc = await walk(api, user, thread_id, limit=3, order="desc", cursor=first_desc["next_cursor"])
    assert ids(first_asc["data"] + rest_asc) == old_path
    assert ids(first_desc["data"] + rest_desc) == old_path[::-1]


@pytest.mark.parametrize("branched", [False, True], ids=["line", "on-a-branch"])
async def test_appends_after_the_current_message_between_pages_show_up_as_in_version_1(
    api: Api, user: str, create_thread: Factory, branched: bool
) -> None:
    thread = await create_thread(messages=[{"content": f"m{i}"} for i in range(1, 5)])
    tree = await tree_of(api, user, thread["id"])
    if branched:
        tree.record(await add(api, user, thread["id"], "edit", tree.by_seq()[1]["id"]))
        tree.record(await add(api, user, thread["id"], "after the edit"))
    first = await page(api, user, thread["id"], limit=2)

    for n in range(3):
        tree.record(await add(api, user, thread["id"], f"late {n}"))
        if n == 0:
            tree.record(await add(api, user, thread["id"], f"late {n} under the leaf", tree.by_seq()[-1]["id"]))

    rest = await walk(api, user, thread["id"], limit=2, cursor=first["next_cursor"])
    current = (await thread_of(api, user, thread["id"]))["current_message_id"]
    assert ids(first["data"] + rest) == tree.path_to(current)
    assert [m["content"] for m in rest][-4:] == ["late 0", "late 0 under the leaf", "late 1", "late 2"]


# --- selectors: errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "selectors",
    [("leaf", "siblings_of"), ("leaf", "view"), ("siblings_of", "view"), ("leaf", "siblings_of", "view")],
    ids=lambda s: "+".join(s),
)
async def test_two_selectors_are_422(api: Api, user: str, create_thread: Factory, selectors: tuple[str, ...]) -> None:
    thread_id, tree = await forked_thread(api, user, create_thread)
    message = tree.by_seq()[1]["id"]
    params = {name: ("all" if name == "view" else message) for name in selectors}

    response = await api.request("GET", messages_url(thread_id), user=user, params=params)

    body = assert_problem(response, 422)
    named = {error["loc"][-1] for error in body["errors"] if error["loc"][0] == "query"}
    assert named & set(selectors), body


@pytest.mark.parametrize("view", ["ALL", "tree", ""])
async def test_an_unknown_view_is_422(api: Api, user: str, create_thread: Factory, view: str) -> None:
    thread_id, _ = await forked_thread(api, user, create_thread)
    response = await api.request("GET", messages_url(thread_id), user=user, params={"view": view})
    assert_problem(response, 422)


@pytest.mark.parametrize("selector", ["leaf", "siblings_of"])
@pytest.mark.parametrize("where", ["unknown", "another-thread", "another-user", "garbage"])
async def test_a_selector_naming_a_message_not_of_the_thread_is_404(
    api: Api, user: str, create_thread: Factory, selector: str, where: str
) -> None:
    thread_id, _ = await forked_thread(api, user, create_thread)
    named = await _parent_elsewhere(api, user, create_thread, where)
    unknown = await _parent_elsewhere(api, user, create_thread, "unknown")

    response = await api.request("GET", messages_url(thread_id), user=user, params={selector: named})
    baseline = await api.request("GET", messages_url(thread_id), user=user, params={selector: unknown})

    body = assert_problem(response, 404)
    assert same_problem(body, assert_problem(baseline, 404))
    if named:
        assert named not in response.text


async def test_a_selector_on_another_users_thread_is_the_thread_404(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread_id, tree = await forked_thread(api, user, create_thread)
    stranger = new_user()
    message = tree.by_seq()[0]["id"]
    for params in ({"leaf": message}, {"siblings_of": message}, {"view": "all"}, {}):
        # Compared with the same request on a thread that does not exist: the two must not be told apart.
        missing = await api.request("GET", messages_url("thr_doesnotexist"), user=stranger, params=params)
        response = await api.request("GET", messages_url(thread_id), user=stranger, params=params)
        assert same_problem(assert_problem(response, 404), assert_problem(missing, 404)), params


SELECTORS: dict[str, dict[str, str]] = {
    "path": {},
    "leaf": {"leaf": "<a3>"},
    "siblings": {"siblings_of": "<a1>"},
    "all": {"view": "all"},
}


@pytest.mark.parametrize(
    ("made_by", "used_with"),
    [(a, b) for a in SELECTORS for b in SELECTORS if a != b],
    ids=lambda value: str(value),
)
async def test_a_cursor_of_one_selector_is_422_with_another(
    api: Api, user: str, create_thread: Factory, made_by: str, used_with: str
) -> None:
    thread_id, tree = await forked_thread(api, user, create_thread)
    # More siblings for a1, so that siblings_of pages too.
    root = tree.by_seq()[0]
    for n in range(3):
        tree.record(await add(api, user, thread_id, f"c{n}", root["id"]))
    named = {f"<{m['content']}>": m["id"] for m in tree.by_seq()}

    def params(name: str) -> dict[str, str]:
        return {key: named.get(value, value) for key, value in SELECTORS[name].items()}

    first = await page(api, user, thread_id, limit=1, **params(made_by))
    assert first["has_more"], first
    response = await api.request(
        "GET",
        messages_url(thread_id),
        user=user,
        params={**params(used_with), "limit": 1, "cursor": first["next_cursor"]},
    )
    body = assert_problem(response, 422)
    assert any(error["loc"][-1] == "cursor" for error in body["errors"]), body


@pytest.mark.parametrize("selector", ["leaf", "siblings_of"])
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_a_cursor_continues_only_the_message_its_selector_named(
    api: Api, user: str, create_thread: Factory, selector: str, order: str
) -> None:
    thread_id, tree = await forked_thread(api, user, create_thread)
    root = tree.by_seq()[0]
    for n in range(3):
        tree.record(await add(api, user, thread_id, f"c{n}", root["id"]))
    named = {m["content"]: m["id"] for m in tree.by_seq()}
    one, other = (named["a3"], named["c2"]) if selector == "leaf" else (named["a1"], named["c0"])
    first = await page(api, user, thread_id, limit=1, order=order, **{selector: one})
    assert first["has_more"], first
    same = await api.request(
        "GET",
        messages_url(thread_id),
        user=user,
        params={selector: one, "order": order, "limit": 1, "cursor": first["next_cursor"]},
    )
    assert same.status_code == 200, same.text
    response = await api.request(
        "GET",
        messages_url(thread_id),
        user=user,
        params={selector: other, "order": order, "limit": 1, "cursor": first["next_cursor"]},
    )
    body = assert_problem(response, 422)
    assert [error["loc"] for error in body["errors"]] == [["query", "cursor"]]


# --- one message ------------------------------------------------------------------------------------------------


async def test_get_one_message_answers_it_as_the_listings_do(api: Api, user: str, create_thread: Factory) -> None:
    thread_id, tree = await forked_thread(api, user, create_thread)
    for message in tree.by_seq():
        response = await api.request("GET", f"{messages_url(thread_id)}/{message['id']}", user=user)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].split(";")[0] == "application/json"
        assert set(response.json()) == MESSAGE_FIELDS
        assert response.json() == tree.expected(message["id"])


@pytest.mark.parametrize("where", ["unknown", "another-thread", "another-user", "garbage"])
async def test_get_one_message_not_of_the_thread_is_404(
    api: Api, user: str, create_thread: Factory, where: str
) -> None:
    thread_id, _ = await forked_thread(api, user, create_thread)
    named = await _parent_elsewhere(api, user, create_thread, where)
    unknown = await _parent_elsewhere(api, user, create_thread, "unknown")

    response = await api.request("GET", f"{messages_url(thread_id)}/{named}", user=user)
    baseline = await api.request("GET", f"{messages_url(thread_id)}/{unknown}", user=user)

    assert same_problem(assert_problem(response, 404), assert_problem(baseline, 404))


async def test_get_one_message_of_another_users_thread_is_404(api: Api, user: str, create_thread: Factory) -> None:
    thread_id, tree = await forked_thread(api, user, create_thread)
    stranger = new_user()
    message = tree.by_seq()[0]["id"]

    theirs = await api.request("GET", f"{messages_url(thread_id)}/{message}", user=stranger)
    missing = await api.request("GET", f"{messages_url('thr_doesnotexist')}/{message}", user=stranger)

    assert same_problem(assert_problem(theirs, 404), assert_problem(missing, 404))
