"""The tree checker the sweeps, races and crash audit rely on is only evidence if it can fail: each broken
invariant of a small, valid tree is reported."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from scripts.torture.tree import tree_violations

Rows = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]


def tree() -> Rows:
    """q → a1 → u2 on the trunk (branch 1), a second answer a2 under q on branch 2 (current)."""
    thread = {
        "id": "t",
        "message_count": 5,
        "deleted_count": 1,
        "current_message_id": "a2",
        "current_branch_id": 2,
        "current_depth": 2,
    }
    messages = [
        {"id": "q", "seq": 1, "branch_id": 1, "depth": 1, "parent_id": None, "sibling_index": 1},
        {"id": "a1", "seq": 2, "branch_id": 1, "depth": 2, "parent_id": "q", "sibling_index": 1},
        {"id": "u2", "seq": 3, "branch_id": 1, "depth": 3, "parent_id": "a1", "sibling_index": 1},
        {"id": "a2", "seq": 5, "branch_id": 2, "depth": 2, "parent_id": "q", "sibling_index": 2},
    ]
    branches = [
        {"id": 1, "parent_branch_id": None, "fork_depth": 0, "sibling_index": 1, "jump_id": None},
        {"id": 2, "parent_branch_id": 1, "fork_depth": 1, "sibling_index": 2, "jump_id": 1},
    ]
    for row in messages + branches:
        row["thread_id"] = "t"
    return [thread], messages, branches


def test_a_valid_tree_has_no_violation() -> None:
    assert tree_violations(*tree()) == []


def _drop_message(rows: Rows, message_id: str) -> None:
    rows[1][:] = [m for m in rows[1] if m["id"] != message_id]


BREAKS: dict[str, tuple[Callable[[Rows], None], str]] = {
    "orphan": (lambda r: _drop_message(r, "a1"), "is missing (an orphan)"),
    "depth": (lambda r: r[1][2].update(depth=4), "depth 4"),
    "sibling index repeated": (lambda r: r[1][3].update(sibling_index=1), "sibling_index repeated"),
    "counters": (lambda r: r[0][0].update(deleted_count=0), "deleted_count 0 != 4"),
    "current not a leaf": (lambda r: r[0][0].update(current_message_id="a1", current_branch_id=1), "is not a leaf"),
    "current elsewhere": (lambda r: r[0][0].update(current_depth=3), "its message is not"),
    "no current with messages": (lambda r: r[0][0].update(current_message_id=None), "no current message, yet"),
    "empty branch": (
        lambda r: (
            _drop_message(r, "a2"),
            r[0][0].update(current_message_id="u2", current_branch_id=1, current_depth=3),
        ),
        "holds no message",
    ),
    "missing parent branch": (lambda r: r[2].pop(0), "trunks"),
    "misplaced on its branch": (lambda r: r[1][3].update(parent_id="a1", depth=3), "parent is not the message above"),
}


@pytest.mark.parametrize("broken", list(BREAKS))
def test_each_broken_invariant_is_reported(broken: str) -> None:
    rows = tree()
    breaking, expected = BREAKS[broken]
    breaking(rows)
    found = "\n".join(tree_violations(*rows))
    assert expected in found, found
