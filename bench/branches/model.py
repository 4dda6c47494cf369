"""An in-memory model of the branch rules (API.md "Branches") that generates the test threads for every
candidate: one list of operations, replayed here to produce rows for

- (a) branch segments: `branches` rows (id, parent_branch_id, fork_depth, sibling_index, level, jump_*) and
  messages keyed by (branch_id, depth);
- (b)/(c) parent pointers: messages with parent_id, depth, sibling_index and a per-message skew-binary jump.

Rules (the same as the SQL of segments.py): a child of position (P, f) — message (P, f) or, for a root, the
thread's trunk at f = 0 — continues branch P at depth f + 1 when P has no message there yet; otherwise it
starts a new branch (parent P, fork_depth f). sibling_index = 1 + the highest among the children of that
position. A branch's jump pointer follows Myers' skew-binary rule, over the branch tree (a) or the message
tree (b).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from common import CONTENT, new_id

_branch_ids = count(1)
T0 = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass
class Branch:
    id: int
    thread_id: str
    parent_branch_id: int | None
    fork_depth: int
    sibling_index: int
    level: int
    jump_id: int | None
    jump_level: int | None
    jump_fork_depth: int | None
    tip: int = 0  # deepest depth holding a message


@dataclass
class Message:
    id: str
    thread_id: str
    seq: int
    role: str
    content: str
    created_at: datetime
    branch_id: int
    depth: int
    parent_id: str | None
    sibling_index: int
    jump_id: str | None = None  # (b): per-message skew-binary jump
    jump_depth: int | None = None


@dataclass
class Thread:
    id: str
    user_id: str
    trunk: Branch
    seq: int = 0
    current: Message | None = None
    branches: list[Branch] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    at: dict[tuple[int, int], Message] = field(default_factory=dict)  # (branch, depth) → message
    forks: dict[tuple[int, int], list[Branch]] = field(default_factory=dict)  # position → branches forked there
    by_id: dict[str, Message] = field(default_factory=dict)
    branch_by_id: dict[int, Branch] = field(default_factory=dict)

    @property
    def current_branch_id(self) -> int:
        return self.current.branch_id if self.current else self.trunk.id

    @property
    def current_depth(self) -> int:
        return self.current.depth if self.current else 0


def new_thread(user_id: str = "u1") -> Thread:
    tid = new_id("thr")
    trunk = Branch(next(_branch_ids), tid, None, 0, 1, 0, None, None, None)
    t = Thread(tid, user_id, trunk)
    t.branches.append(trunk)
    t.branch_by_id[trunk.id] = trunk
    return t


def append(t: Thread, parent: Message | str | None = "current", role: str | None = None) -> Message:
    if parent == "current":
        parent = t.current
    assert parent is None or isinstance(parent, Message)
    if parent is None:
        pb, f = t.trunk, 0
    else:
        pb, f = t.branch_by_id[parent.branch_id], parent.depth
    cont = t.at.get((pb.id, f + 1))
    forks = t.forks.get((pb.id, f), [])
    index = max([cont.sibling_index if cont else 0] + [b.sibling_index for b in forks]) + 1
    if cont is None:
        branch = pb
    else:
        jump = t.branch_by_id.get(pb.jump_id) if pb.jump_id else None
        if jump is not None and jump.jump_id is not None and pb.level - jump.level == jump.level - jump.jump_level:
            j = (jump.jump_id, jump.jump_level, jump.jump_fork_depth)
        else:
            j = (pb.id, pb.level, pb.fork_depth)
        branch = Branch(next(_branch_ids), t.id, pb.id, f, index, pb.level + 1, *j)
        t.branches.append(branch)
        t.branch_by_id[branch.id] = branch
        t.forks.setdefault((pb.id, f), []).append(branch)
    t.seq += 1
    m = Message(
        id=new_id("msg"),
        thread_id=t.id,
        seq=t.seq,
        role=role or ("user" if (f % 2 == 0) else "assistant"),
        content=f"{t.seq}: {CONTENT}",
        created_at=T0 + timedelta(seconds=t.seq),
        branch_id=branch.id,
        depth=f + 1,
        parent_id=parent.id if parent else None,
        sibling_index=index,
    )
    # (b): the message tree's own skew-binary jump pointer (by depth).
    if parent is not None:
        pj = t.by_id.get(parent.jump_id) if parent.jump_id else None
        if pj is not None and pj.jump_id is not None and parent.depth - pj.depth == pj.depth - pj.jump_depth:
            m.jump_id, m.jump_depth = pj.jump_id, pj.jump_depth
        else:
            m.jump_id, m.jump_depth = parent.id, parent.depth
    branch.tip = max(branch.tip, m.depth)
    t.at[(branch.id, m.depth)] = m
    t.messages.append(m)
    t.by_id[m.id] = m
    t.current = m
    return m


# ---------------------------------------------------------------- the test threads


def linear(n: int) -> Thread:
    t = new_thread()
    for _ in range(n):
        append(t)
    return t


def edited(segments: int, length: int) -> Thread:
    """A path of segments * length messages; each segment after the first is an edit: at the end of the
    previous segment the old reply (abandoned, one message) is kept and a newer sibling continues the path.
    So the active path has `segments` branch segments and there are segments - 1 abandoned alternatives."""
    t = new_thread()
    for _ in range(length):
        append(t)
    for _ in range(segments - 1):
        tip = t.current
        append(t, tip)  # the old continuation, abandoned
        append(t, tip)  # the newer sibling: a new branch, current
        for _ in range(length - 1):
            append(t)
    return t


def wide(siblings: int) -> Thread:
    """One user message with `siblings` regenerated answers (the last is current)."""
    t = new_thread()
    root = append(t, None, role="user")
    for _ in range(siblings):
        append(t, root, role="assistant")
    return t


def path_of(t: Thread, leaf: Message) -> list[Message]:
    out = []
    m: Message | None = leaf
    while m is not None:
        out.append(m)
        m = t.by_id.get(m.parent_id) if m.parent_id else None
    return out[::-1]


def rows(t: Thread) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "thread": [(t.id, t.user_id, t.seq, t.current.id if t.current else None, t.current_branch_id, t.current_depth)],
        "branches": [
            (
                b.id,
                t.id,
                b.parent_branch_id,
                b.fork_depth,
                b.sibling_index,
                b.level,
                b.jump_id,
                b.jump_level,
                b.jump_fork_depth,
            )
            for b in t.branches
        ],
        "messages": [
            (
                m.id,
                t.id,
                m.seq,
                m.role,
                m.content,
                m.created_at,
                m.branch_id,
                m.depth,
                m.parent_id,
                m.sibling_index,
                m.jump_id,
                m.jump_depth,
            )
            for m in t.messages
        ],
    }
