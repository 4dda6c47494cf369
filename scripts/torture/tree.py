"""The invariants of stored message trees (docs/branches-design.md §2), checked on rows read from the database.

Shared by the safety sweeps (tests/safety/state.py: after every interrupted or failed request), the race
families and the crash audit: whatever was cut short, a thread's rows must still describe one tree whose
counters, current message and branch segments agree with its messages.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

Row = Mapping[str, Any]

THREAD_COLUMNS = ("id", "message_count", "deleted_count", "current_message_id", "current_branch_id", "current_depth")
MESSAGE_COLUMNS = ("id", "thread_id", "seq", "branch_id", "depth", "parent_id", "sibling_index")
BRANCH_COLUMNS = ("id", "thread_id", "parent_branch_id", "fork_depth", "sibling_index", "jump_id")


def tree_violations(threads: Iterable[Row], messages: Iterable[Row], branches: Iterable[Row]) -> list[str]:
    """Every departure from the tree invariants among `threads`, given all of their messages and branches:

    - no orphan: a message's parent is a message of its thread (or None for a root);
    - depth = the parent's depth + 1 (a root: 1); sibling_index unique among the children of one parent;
    - the branch segments agree: a message continues its branch (parent at depth - 1 of the same branch) or
      opens it (parent at the branch's fork depth on the parent branch; a root for fork depth 0), a branch's
      first message carries the branch's sibling_index, every branch but the trunk holds messages, every
      parent branch and jump is a branch above it in the same thread, one trunk per thread;
    - counters: message_count - deleted_count = the messages stored, seqs unique and at most message_count;
    - current_message_id is a leaf of the thread, None exactly when it has no message, and
      current_branch_id/current_depth are that message's (the trunk and 0 without one).
    """
    by_thread: dict[str, list[Row]] = defaultdict(list)
    for m in messages:
        by_thread[m["thread_id"]].append(m)
    branches_of: dict[str, list[Row]] = defaultdict(list)
    for b in branches:
        branches_of[b["thread_id"]].append(b)
    found: list[str] = []
    for thread in threads:
        found += [f"thread {thread['id']}: {v}" for v in _thread(thread, by_thread[thread["id"]], branches_of)]
    return found


def _thread(thread: Row, stored: list[Row], branches_of: Mapping[str, list[Row]]) -> list[str]:
    bad: list[str] = []
    ids = {m["id"]: m for m in stored}
    at = {(m["branch_id"], m["depth"]): m for m in stored}
    branch = {b["id"]: b for b in branches_of.get(thread["id"], [])}
    trunks = [b for b in branch.values() if b["parent_branch_id"] is None]
    if len(trunks) != 1:
        bad.append(f"{len(trunks)} trunks")

    expected = thread["message_count"] - thread["deleted_count"]
    if expected != len(stored):
        bad.append(
            f"message_count {thread['message_count']} - deleted_count {thread['deleted_count']} != {len(stored)}"
        )
    seqs = Counter(m["seq"] for m in stored)
    if seqs and (max(seqs.values()) > 1 or max(seqs) > thread["message_count"] or min(seqs) < 1):
        bad.append(f"seqs {sorted(seqs)[:20]} repeat or pass message_count {thread['message_count']}")

    siblings: Counter[tuple[str | None, int]] = Counter()
    children: Counter[str] = Counter()
    for m in stored:
        siblings[(m["parent_id"], m["sibling_index"])] += 1
        parent = ids.get(m["parent_id"]) if m["parent_id"] is not None else None
        if m["parent_id"] is not None:
            children[m["parent_id"]] += 1
            if parent is None:
                bad.append(f"message {m['id']}: parent {m['parent_id']} is missing (an orphan)")
                continue
        if m["depth"] != (parent["depth"] + 1 if parent else 1):
            bad.append(f"message {m['id']}: depth {m['depth']}, its parent's {parent['depth'] if parent else None}")
        seg = branch.get(m["branch_id"])
        if seg is None:
            bad.append(f"message {m['id']}: branch {m['branch_id']} is not one of the thread's")
            continue
        if m["depth"] <= seg["fork_depth"]:
            bad.append(f"message {m['id']}: depth {m['depth']} at or above its branch's fork depth")
        elif m["depth"] > seg["fork_depth"] + 1:
            above = at.get((m["branch_id"], m["depth"] - 1))
            if above is None or above["id"] != m["parent_id"]:
                bad.append(f"message {m['id']}: its parent is not the message above it on its branch")
        else:
            opened = at.get((seg["parent_branch_id"], seg["fork_depth"])) if seg["fork_depth"] else None
            if (opened["id"] if opened else None) != m["parent_id"]:
                bad.append(f"message {m['id']}: its parent is not where its branch forks off")
            if seg["parent_branch_id"] is not None and m["sibling_index"] != seg["sibling_index"]:
                bad.append(f"message {m['id']}: sibling_index {m['sibling_index']} != its branch's")
    repeated = sorted((p, i) for (p, i), n in siblings.items() if n > 1)
    if repeated:
        bad.append(f"sibling_index repeated under one parent: {repeated[:5]}")

    used = {m["branch_id"] for m in stored}
    for b in branch.values():
        if b["parent_branch_id"] is not None and b["id"] not in used:
            bad.append(f"branch {b['id']} holds no message")
        ancestors = set()
        up = b["parent_branch_id"]
        while up is not None and up in branch and up not in ancestors:
            ancestors.add(up)
            up = branch[up]["parent_branch_id"]
        if up is not None:
            bad.append(f"branch {b['id']}: parent branch {up} is missing")
        if b["jump_id"] is not None and b["jump_id"] not in ancestors:
            bad.append(f"branch {b['id']}: jump {b['jump_id']} is not a branch above it")

    current = thread["current_message_id"]
    if current is None:
        if stored:
            bad.append(f"no current message, yet {len(stored)} messages")
        trunk = trunks[0]["id"] if len(trunks) == 1 else None
        if (thread["current_branch_id"], thread["current_depth"]) != (trunk, 0):
            bad.append(f"no current message, yet at {thread['current_branch_id']}/{thread['current_depth']}")
    elif current not in ids:
        bad.append(f"current message {current} is not one of its messages")
    else:
        if children[current]:
            bad.append(f"current message {current} is not a leaf ({children[current]} children)")
        row = ids[current]
        if (thread["current_branch_id"], thread["current_depth"]) != (row["branch_id"], row["depth"]):
            bad.append(f"current at {thread['current_branch_id']}/{thread['current_depth']}, its message is not")
    return bad
