"""Branch figures of issue 16 (API.md "Branches"): pages of a long branched path, sibling lists, appends with and
without parent_id, branch switches, forks and the NDJSON read, against the linear thread's first page and the
yardstick's append measured in the same rounds. See docs/performance.md, "Branches (issue 16)".

The trees are seeded with COPY from rows this module builds with the placement rule of
messages/repository.py (`_append_child_sqlite`): sibling_index, new branch or continuation, and the
skew-binary jump pointer. `check_builder` replays a small tree of the same shape through the API and compares
the rows threadstore wrote with the rows built here; `verify` reads the seeded trees back through the API.
"""

from __future__ import annotations

import hashlib
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import report
import seeding
from load import Line, Sample, run_wrk, write_lines
from servers import Server

from threadstore.cursors import encode_message_cursor
from threadstore.db.search_terms import tsvector_literal
from threadstore.search.index import indexed

OWNER = "brancher"  # a user of its own: the seeded users' lists stay as the other endpoints expect them
DEEP_THREAD = "thr_deep000000000000000"
BUSHY_THREAD = "thr_bushy00000000000000"
SEGMENTS, SEGMENT_LENGTH = 1000, 100  # the design study's `deep`: a 100,000-message path in 1,000 segments
SIBLINGS = 1000  # the `wide` thread: one user message with 1,000 regenerated answers
SWITCH_THREADS = 1000  # 10 messages each and a regenerated last answer: two leaves to switch between
FORK_PATH = 1000  # the fork target: a 1,000-message path (10 segments of the deep thread)
FORK_REPEATS = 15
PAGE = 50  # the API's default limit: every page here is a default page, like the linear thread's first
CONTENT = "lorem ipsum " * 8  # the big linear thread's text, so both serialize the same bytes per message
T0 = datetime(2026, 12, 1, tzinfo=UTC)

MAX_PAGE_COST = 1.3
MAX_FORK_MS = 100.0
MAX_SWITCH_P99 = 2.0
NDJSON = "application/x-ndjson"
MAX_NDJSON_GROWTH_MIB = 32  # pages of 500 fit; the 100,000 messages held as objects would not (~100 MiB)


def message_id(thread_id: str, seq: int) -> str:
    """Seeded ids: md5 of (thread, seq), as the bench's regular threads (seeding.py)."""
    return "msg_" + hashlib.md5(f"{thread_id}-{seq}".encode()).hexdigest()[:22]


@dataclass
class Branch:
    id: int
    parent_branch_id: int | None
    fork_depth: int
    sibling_index: int
    level: int
    jump_id: int | None = None
    jump_level: int | None = None
    jump_fork_depth: int | None = None


@dataclass(frozen=True)
class Placed:
    id: str
    seq: int
    branch_id: int
    depth: int
    parent_id: str | None
    sibling_index: int


@dataclass
class Tree:
    """A thread's messages placed as threadstore places them (docs/branches-design.md, 2.1); branch ids are
    1, 2, 3, … in creation order until `renumber`."""

    thread_id: str
    branches: list[Branch] = field(default_factory=list)
    messages: list[Placed] = field(default_factory=list)
    current: Placed | None = None
    _at: dict[tuple[int, int], int] = field(default_factory=dict)  # (branch, depth) -> sibling_index
    _forks: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # position -> forks' indexes
    _by_id: dict[int, Branch] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._add(Branch(1, None, 0, 1, 0))

    @property
    def trunk(self) -> Branch:
        return self.branches[0]

    def _add(self, branch: Branch) -> None:
        self.branches.append(branch)
        self._by_id[branch.id] = branch

    def append(self, parent: Placed | str | None = "current") -> Placed:
        """A child of `parent` (None: a new root; "current": after the current message)."""
        if parent == "current":
            parent = self.current
        assert parent is None or isinstance(parent, Placed)
        pb, f = (self.trunk.id, 0) if parent is None else (parent.branch_id, parent.depth)
        cont = self._at.get((pb, f + 1))
        forks = self._forks.setdefault((pb, f), [])
        index = max([cont or 0, *forks]) + 1
        branch_id = pb
        if cont is not None:  # the position already continues its branch: a new one starts
            p = self._by_id[pb]
            j = self._by_id.get(p.jump_id) if p.jump_id is not None else None
            # Myers' skew-binary jump, as _append_child_sqlite: the parent's jump's jump when the spans are equal.
            skip = j is not None and j.jump_id is not None and p.level - p.jump_level == p.jump_level - j.jump_level  # type: ignore[operator]
            jump = (j.jump_id, j.jump_level, j.jump_fork_depth) if skip and j else (p.id, p.level, p.fork_depth)
            branch_id = len(self.branches) + 1
            self._add(Branch(branch_id, pb, f, index, p.level + 1, *jump))
            forks.append(index)
        seq = len(self.messages) + 1
        placed = Placed(message_id(self.thread_id, seq), seq, branch_id, f + 1, parent.id if parent else None, index)
        self._at[(branch_id, f + 1)] = index
        self.messages.append(placed)
        self.current = placed
        return placed

    def sibling_count(self, m: Placed) -> int:
        """Messages sharing m's parent: the continuation of the position plus its forks."""
        pb, f = (self.trunk.id, 0) if m.parent_id is None else self._position_of_parent(m)
        return int((pb, f + 1) in self._at) + len(self._forks.get((pb, f), []))

    def _position_of_parent(self, m: Placed) -> tuple[int, int]:
        branch = self._by_id[m.branch_id]
        if m.depth == branch.fork_depth + 1 and branch.parent_branch_id is not None:
            return branch.parent_branch_id, branch.fork_depth
        return m.branch_id, m.depth - 1

    def path(self, leaf: Placed) -> list[Placed]:
        by_id = {m.id: m for m in self.messages}
        out = [leaf]
        while out[-1].parent_id is not None:
            out.append(by_id[out[-1].parent_id])
        return out[::-1]

    def renumber(self, ids: list[int]) -> None:
        """Gives the branches the ids the database's sequence handed out, in creation order."""
        new = dict(zip(range(1, len(self.branches) + 1), ids, strict=True))
        for b in self.branches:
            b.id = new[b.id]
            b.parent_branch_id = new.get(b.parent_branch_id) if b.parent_branch_id is not None else None
            b.jump_id = new.get(b.jump_id) if b.jump_id is not None else None
        self.messages = [replace(m, branch_id=new[m.branch_id]) for m in self.messages]
        self._by_id = {b.id: b for b in self.branches}
        self._at = {(new[b], d): i for (b, d), i in self._at.items()}
        self._forks = {(new[b], f): i for (b, f), i in self._forks.items()}
        if self.current is not None:
            self.current = self.messages[self.current.seq - 1]


def deep_tree(thread_id: str, segments: int = SEGMENTS, length: int = SEGMENT_LENGTH) -> Tree:
    """The design study's `deep` (bench/branches/model.py `edited`): every `length` messages the last answer
    is edited; the old one stays as an abandoned sibling and the path goes on in the new one."""
    t = Tree(thread_id)
    for _ in range(length):
        t.append()
    for _ in range(segments - 1):
        tip = t.current
        t.append(tip)  # the old continuation, abandoned
        t.append(tip)  # its newer sibling: a new branch, current
        for _ in range(length - 1):
            t.append()
    return t


def wide_tree(thread_id: str, siblings: int = SIBLINGS) -> Tree:
    t = Tree(thread_id)
    root = t.append(None)
    for _ in range(siblings):
        t.append(root)
    return t


def switch_tree(thread_id: str) -> Tree:
    t = Tree(thread_id)
    for _ in range(10):
        t.append()
    t.append(t.messages[8])  # a regenerated last answer: a sibling of message 10, current
    return t


def switch_thread_id(n: int) -> str:
    return "thr_" + hashlib.md5(f"s-{n}".encode()).hexdigest()[:22]


@dataclass
class Seeded:
    deep: Tree
    bushy: Tree
    switches: list[Tree]

    @property
    def deep_path(self) -> list[Placed]:
        assert self.deep.current is not None
        return self.deep.path(self.deep.current)


def build() -> Seeded:
    return Seeded(
        deep_tree(DEEP_THREAD),
        wide_tree(BUSHY_THREAD),
        [switch_tree(switch_thread_id(n)) for n in range(SWITCH_THREADS)],
    )


_ROLES = ("assistant", "user")  # odd depths are users' turns


async def seed(dsn: str) -> Seeded:
    """Writes the trees: thread rows, branches with ids from threadstore's sequence, messages by COPY."""
    seeded = build()
    trees = [seeded.deep, seeded.bushy, *seeded.switches]
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            total = sum(len(t.branches) for t in trees)
            ids = [
                r[0]
                for r in await conn.fetch(
                    "SELECT nextval(pg_get_serial_sequence('branches', 'id')) FROM generate_series(1, $1::int)", total
                )
            ]
            at = 0
            for t in trees:
                t.renumber(sorted(ids[at : at + len(t.branches)]))
                at += len(t.branches)
            await conn.copy_records_to_table(
                "threads",
                columns=["id", "user_id", "title", "metadata", "status", "created_at", "updated_at", "message_count",
                         "last_message_at", "version", "current_message_id", "current_branch_id", "current_depth"],
                records=[_thread_row(t, n) for n, t in enumerate(trees)],
            )  # fmt: skip
            await conn.copy_records_to_table(
                "branches",
                columns=["id", "thread_id", "parent_branch_id", "fork_depth", "sibling_index", "level", "jump_id",
                         "jump_level", "jump_fork_depth"],
                records=[(b.id, t.thread_id, b.parent_branch_id, b.fork_depth, b.sibling_index, b.level, b.jump_id,
                          b.jump_level, b.jump_fork_depth) for t in trees for b in t.branches],
            )  # fmt: skip
            # Indexed as threadstore writes a message (issue 18): a fork copies the terms with the text. Rows
            # without them would be indexed one by one after the copy, as unfinished replies are.
            terms = indexed(OWNER, CONTENT)
            assert terms is not None
            literal = tsvector_literal(terms)
            await seeding.copy_csv(
                conn,
                "messages",
                ["id", "thread_id", "seq", "role", "content", "metadata", "created_at", "branch_id", "depth",
                 "parent_id", "sibling_index", "search_terms"],
                [(m.id, t.thread_id, m.seq, _ROLES[m.depth % 2], CONTENT, "{}", _stamp(m.seq).isoformat(),
                  m.branch_id, m.depth, m.parent_id, m.sibling_index, literal)
                 for t in trees for m in t.messages],
            )  # fmt: skip
        for table in ("threads", "branches", "messages"):
            await conn.execute(f"VACUUM ANALYZE {table}")
    finally:
        await conn.close()
    return seeded


async def load(dsn: str) -> Seeded:
    """The trees a run with --keep seeded (--reuse-database): built again, their branch ids read back in order."""
    seeded = build()
    conn = await asyncpg.connect(dsn)
    try:
        for t in (seeded.deep, seeded.bushy, *seeded.switches):
            rows = await conn.fetch("SELECT id FROM branches WHERE thread_id = $1 ORDER BY id", t.thread_id)
            t.renumber([r[0] for r in rows[: len(t.branches)]])
    finally:
        await conn.close()
    return seeded


def _stamp(seq: int) -> datetime:
    return T0 + timedelta(milliseconds=seq)


def _thread_row(t: Tree, n: int) -> tuple[Any, ...]:
    assert t.current is not None
    created = T0 - timedelta(seconds=n)
    last = _stamp(len(t.messages))
    count = len(t.messages)
    return (t.thread_id, OWNER, f"branches {n}", "{}", "active", created, last, count, last, count + 1, t.current.id,
            t.current.branch_id, t.current.depth)  # fmt: skip


# ---------------------------------------------------------------- checks through the API


def _expect(page: dict[str, Any], tree: Tree, want: list[Placed], what: str) -> None:
    got = [(m["id"], m["depth"], m["parent_id"], m["sibling_index"], m["sibling_count"]) for m in page["data"]]
    exp = [(m.id, m.depth, m.parent_id, m.sibling_index, tree.sibling_count(m)) for m in want]
    if got != exp:
        first = next((i for i, (g, e) in enumerate(zip(got, exp, strict=False)) if g != e), min(len(got), len(exp)))
        raise RuntimeError(f"{what}: {len(got)} rows, expected {len(exp)}; first difference at row {first}")


@dataclass(frozen=True)
class Requests:
    """The path of each request measured, relative to the app's base URL."""

    paths: dict[str, str]


def requests_for(seeded: Seeded, big_thread: str) -> Requests:
    path = seeded.deep_path
    n = len(path)
    mid = n // 2
    leaf_branch = path[-1].branch_id
    base = f"/api/threads/{DEEP_THREAD}/messages"
    bushy_answer = seeded.bushy.messages[1].id
    return Requests(
        {
            "linear_first": f"/api/threads/{big_thread}/messages",
            "path_asc_first": base,
            "path_asc_middle": f"{base}?cursor={encode_message_cursor('path', leaf_branch, mid)}",
            "path_asc_last": f"{base}?cursor={encode_message_cursor('path', leaf_branch, n - PAGE)}",
            "path_desc_first": f"{base}?order=desc",
            "path_desc_middle": f"{base}?order=desc&cursor="
            + encode_message_cursor("path-desc", path[mid].branch_id, mid + 1),
            "path_desc_last": f"{base}?order=desc&cursor="
            + encode_message_cursor("path-desc", path[PAGE].branch_id, PAGE + 1),
            "siblings_first": f"/api/threads/{BUSHY_THREAD}/messages?siblings_of={bushy_answer}",
        }
    )


async def verify(url: str, token: str, seeded: Seeded, requests: Requests) -> list[str]:
    """Reads the seeded trees back through the API and compares every field the tree decides. Returns what
    was checked, for the report."""
    path = seeded.deep_path
    n, mid = len(path), len(path) // 2
    deep = seeded.deep
    async with httpx.AsyncClient(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:

        async def get(p: str) -> dict[str, Any]:
            response = await client.get(p)
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

        thread = await get(f"/api/threads/{DEEP_THREAD}")
        if thread["current_message_id"] != path[-1].id or thread["message_count"] != len(deep.messages):
            raise RuntimeError(f"deep thread: {thread['current_message_id']}, {thread['message_count']} messages")
        p = requests.paths
        first = await get(p["path_asc_first"])
        _expect(first, deep, path[:PAGE], "path asc first page")
        if first["next_cursor"] != encode_message_cursor("path", path[-1].branch_id, PAGE):
            raise RuntimeError("the first page's cursor is not the one the bench builds for deeper pages")
        _expect(await get(p["path_asc_middle"]), deep, path[mid : mid + PAGE], "path asc middle page")
        last = await get(p["path_asc_last"])
        _expect(last, deep, path[n - PAGE :], "path asc last page")
        if last["has_more"]:
            raise RuntimeError("the last ascending page says it has more")
        desc = await get(p["path_desc_first"])
        _expect(desc, deep, path[::-1][:PAGE], "path desc first page")
        d = n - PAGE + 1
        if desc["next_cursor"] != encode_message_cursor("path-desc", path[d - 1].branch_id, d):
            raise RuntimeError("the first descending page's cursor is not the one the bench builds")
        _expect(await get(p["path_desc_middle"]), deep, path[mid - PAGE : mid][::-1], "path desc middle page")
        bottom = await get(p["path_desc_last"])
        _expect(bottom, deep, path[:PAGE][::-1], "path desc last page")
        if bottom["has_more"]:
            raise RuntimeError("the last descending page says it has more")
        # The abandoned answers: a leaf= path through one of them.
        abandoned = next(m for m in deep.messages if m.depth == 5 * SEGMENT_LENGTH + 1 and m.sibling_index == 1)
        leaf = await get(f"/api/threads/{DEEP_THREAD}/messages?order=desc&limit=3&leaf={abandoned.id}")
        _expect(leaf, deep, deep.path(abandoned)[::-1][:3], "leaf= an abandoned answer")

        bushy = seeded.bushy
        answers = bushy.messages[1:]
        seen: list[dict[str, Any]] = []
        page = await get(p["siblings_first"])
        _expect(page, bushy, answers[:PAGE], "siblings_of first page")
        while True:
            seen += page["data"]
            if not page["next_cursor"]:
                break
            page = await get(f"{p['siblings_first']}&limit=100&cursor={page['next_cursor']}")
        if [m["id"] for m in seen] != [m.id for m in answers]:
            raise RuntimeError(f"siblings_of listed {len(seen)} messages, expected {len(answers)}")
        bushy_thread = await get(f"/api/threads/{BUSHY_THREAD}")
        if bushy_thread["current_message_id"] != answers[-1].id:
            raise RuntimeError("the bushy thread's current message is not its last answer")

        sw = seeded.switches[0]
        assert sw.current is not None
        _expect(await get(f"/api/threads/{sw.thread_id}/messages"), sw, sw.path(sw.current), "switch thread path")
    return [
        f"deep thread: {len(deep.messages):,} messages, {len(deep.branches):,} branches, active path {n:,};"
        " first, middle and last pages both ways, the cursors the bench builds, leaf= an abandoned answer",
        f"bushy thread: {len(answers):,} siblings, every page of siblings_of",
        f"{len(seeded.switches):,} switch threads of {len(sw.messages)} messages and 2 branches: the path of one",
    ]


async def check_builder(url: str, token: str, dsn: str, segments: int = 40, length: int = 3) -> str:
    """Builds a small `deep` tree through the API (the real placement code) and compares its branch rows
    (parents, fork depths, indexes, levels, jump pointers) and messages with the ones `Tree` builds."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=60, headers=headers) as client:
        created = await client.post("/api/threads", json={"title": "builder check"})
        created.raise_for_status()
        tid = created.json()["id"]

        async def append(parent: str | None = None) -> str:
            body: dict[str, Any] = {"role": "user", "content": "x"}
            if parent is not None:
                body["parent_id"] = parent
            response = await client.post(f"/api/threads/{tid}/messages", json=body)
            response.raise_for_status()
            return str(response.json()["id"])

        current = ""
        for _ in range(length):
            current = await append()
        for _ in range(segments - 1):
            tip = current
            await append(tip)
            current = await append(tip)
            for _ in range(length - 1):
                current = await append()
    conn = await asyncpg.connect(dsn)
    try:
        branch_rows = await conn.fetch(
            "SELECT id, parent_branch_id, fork_depth, sibling_index, level, jump_id, jump_level, jump_fork_depth"
            " FROM branches WHERE thread_id = $1 ORDER BY id",
            tid,
        )
        message_rows = await conn.fetch(
            "SELECT seq, branch_id, depth, sibling_index FROM messages WHERE thread_id = $1 ORDER BY seq", tid
        )
    finally:
        await conn.close()
    tree = deep_tree(tid, segments, length)
    tree.renumber([r["id"] for r in branch_rows])
    built = [
        (b.id, b.parent_branch_id, b.fork_depth, b.sibling_index, b.level, b.jump_id, b.jump_level, b.jump_fork_depth)
        for b in tree.branches
    ]
    if [tuple(r) for r in branch_rows] != built:
        raise RuntimeError("the seeding's branch rows differ from threadstore's for the same tree")
    if [tuple(r) for r in message_rows] != [(m.seq, m.branch_id, m.depth, m.sibling_index) for m in tree.messages]:
        raise RuntimeError("the seeding's message placement differs from threadstore's for the same tree")
    skips = sum(1 for b in tree.branches if b.jump_id is not None and b.jump_id != b.parent_branch_id)
    return (
        f"seeding's placement = threadstore's: a {segments}-segment tree appended through the API has the same"
        f" {len(branch_rows)} branch rows ({skips} jump pointers that skip levels) and {len(message_rows)} placements"
    )


# ---------------------------------------------------------------- load


@dataclass(frozen=True)
class Measured:
    key: str
    label: str
    app: str


MEASURED = [
    Measured("linear_first", "linear thread (--big), first page (baseline)", "ts"),
    Measured("path_asc_first", "active path, asc, first page", "ts"),
    Measured("path_asc_middle", "active path, asc, page at depth 50,001", "ts"),
    Measured("path_asc_last", "active path, asc, last page", "ts"),
    Measured("path_desc_first", "active path, desc, first page", "ts"),
    Measured("path_desc_middle", "active path, desc, page at depth 50,000", "ts"),
    Measured("path_desc_last", "active path, desc, last page", "ts"),
    Measured("siblings_first", "siblings_of a 1,000-sibling message, first page", "ts"),
    Measured("append", "append, no parent_id", "ts"),
    Measured("append_parent", "append with parent_id (a new sibling)", "ts"),
    Measured("append_ys", "yardstick append (baseline)", "ys"),
    Measured("switch", "PATCH current_message_id (branch switch)", "ts"),
]
PAGE_KEYS = [m.key for m in MEASURED if m.key.startswith(("path_", "siblings_"))]


def write_files(
    seeded: Seeded,
    requests: Requests,
    *,
    ts_threads: list[tuple[str, str]],
    ys_threads: list[tuple[str, str]],
    tokens: dict[str, str],
    big_owner: str,
    workdir: Path,
) -> dict[str, Path]:
    owner = tokens[OWNER]
    append_body = '{"role": "user", "content": "benchmark message %R"}'
    lines: dict[str, list[Line]] = {
        key: [Line("GET", path, tokens[big_owner] if key == "linear_first" else owner)]
        for key, path in requests.paths.items()
    }
    lines["append"] = [Line("POST", f"/api/threads/{t}/messages", tokens[u], append_body) for u, t in ts_threads]
    lines["append_ys"] = [Line("POST", f"/api/threads/{t}/messages", tokens[u], append_body) for u, t in ys_threads]
    # A regenerated answer of the seeded threads' message 9: a new sibling of message 10, so a new branch.
    lines["append_parent"] = [
        Line(
            "POST",
            f"/api/threads/{t}/messages",
            tokens[u],
            '{"role": "assistant", "content": "benchmark answer %R", "parent_id": "' + message_id(t, 9) + '"}',
        )
        for u, t in ts_threads
    ]
    lines["switch"] = [
        Line("PATCH", f"/api/threads/{t.thread_id}", owner, json.dumps({"current_message_id": m.id}))
        for t in seeded.switches
        for m in t.messages[9:]  # the two leaves, message 10 and its regenerated sibling
    ]
    return {key: write_lines(workdir / f"branches-{key}.lines", rows) for key, rows in lines.items()}


def measure(
    servers: dict[str, Server],
    files: dict[str, Path],
    *,
    rounds: int,
    duration: float,
    warmup: float,
    connections: int,
    threads: int,
    log: Callable[[str], None],
) -> dict[str, list[Sample]]:
    """Each round loads every request once, in MEASURED order, so drift of a shared machine spreads over all."""
    results: dict[str, list[Sample]] = {m.key: [] for m in MEASURED}
    for m in MEASURED:
        run_wrk(servers[m.app].url, files[m.key], seconds=warmup, connections=connections, threads=threads)
    for n in range(rounds):
        for m in MEASURED:
            server = servers[m.app]
            cpu = server.cpu_seconds()
            sample = run_wrk(server.url, files[m.key], seconds=duration, connections=connections, threads=threads)
            sample = replace(sample, server_cpu_seconds=server.cpu_seconds() - cpu)
            results[m.key].append(sample)
            bad = f" NON-2XX {sample.non2xx} (last {sample.last_bad_status})" if sample.failures else ""
            log(f"branches {m.key:17} round {n + 1}: {sample.rps:8,.0f} req/s p50 {sample.p50_ms:6.1f} ms "
                f"p99 {sample.p99_ms:6.1f} ms, server CPU {sample.cpu_ms_per_request:.2f} ms/req{bad}")  # fmt: skip
    return results


# ---------------------------------------------------------------- forks and NDJSON


@dataclass(frozen=True)
class Singles:
    fork_ms: list[float]
    fork_big_ms: float
    fork_big_messages: int
    ndjson: dict[str, Any]  # "pending" with a reason, or the stream's figures


async def singles(server: Server, token: str, seeded: Seeded, log: Callable[[str], None]) -> Singles:
    """Sequential requests on an otherwise idle server: forks of a 1,000-message path, one of the whole
    100,000-message path, and the NDJSON read of that path with the server's peak RSS."""
    path = seeded.deep_path
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server.url, timeout=600, headers=headers) as client:
        times, big_ms, big_count = await forks(client, path, log)
        ndjson = await _ndjson(client, server, len(path), log)
    return Singles(times, big_ms, big_count, ndjson)


async def forks(
    client: httpx.AsyncClient, path: list[Placed], log: Callable[[str], None]
) -> tuple[list[float], float, int]:
    """Sequential forks of the deep thread (`path`: its active path): FORK_REPEATS of its first FORK_PATH
    messages after one warm-up, then one of the whole path. (ms of each, ms of the whole, messages copied.)"""

    async def fork(message: str) -> tuple[float, dict[str, Any]]:
        t0 = time.perf_counter()
        response = await client.post(f"/api/threads/{DEEP_THREAD}/fork", json={"message_id": message})
        elapsed = (time.perf_counter() - t0) * 1000
        if response.status_code != 201:
            raise RuntimeError(f"fork answered {response.status_code}: {response.text[:300]}")
        body: dict[str, Any] = response.json()
        return elapsed, body

    await fork(path[FORK_PATH - 1].id)  # warm-up: plans and pool
    times = []
    for _ in range(FORK_REPEATS):
        elapsed, body = await fork(path[FORK_PATH - 1].id)
        if body["message_count"] != FORK_PATH:
            raise RuntimeError(f"a fork of a {FORK_PATH}-message path has {body['message_count']} messages")
        times.append(elapsed)
    log(f"fork of a {FORK_PATH:,}-message path: median {statistics.median(times):.1f} ms of {FORK_REPEATS}")
    big_ms, big = await fork(path[-1].id)
    log(f"fork of the {len(path):,}-message path: {big_ms:,.0f} ms, {big['message_count']:,} messages")
    return times, big_ms, int(big["message_count"])


async def _ndjson(client: httpx.AsyncClient, server: Server, n: int, log: Callable[[str], None]) -> dict[str, Any]:
    """HOOK for the NDJSON read (API.md "Whole-conversation reads", built on branch h16-ndjson): while the
    server answers JSON to `Accept: application/x-ndjson`, the figure is reported as pending."""
    url = f"/api/threads/{DEEP_THREAD}/messages"
    async with client.stream("GET", url, params={"limit": 1}, headers={"Accept": NDJSON}) as probe:
        kind = probe.headers.get("content-type", "")
        await probe.aclose()
    if not kind.startswith(NDJSON):
        log(f"NDJSON: the server answers {kind or 'nothing'} to Accept: {NDJSON}: pending")
        return {"pending": f"the server answers `{kind}` to `Accept: {NDJSON}` (NDJSON not on this commit)"}
    base_kib = server.rss_kib()
    _reset_peak_rss(server.pid)
    lines = 0
    t0 = time.perf_counter()
    async with client.stream("GET", url, headers={"Accept": NDJSON}) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line:
                lines += 1
    seconds = time.perf_counter() - t0
    peak_kib = _peak_rss_kib(server.pid)
    if lines != n:
        raise RuntimeError(f"the NDJSON read gave {lines:,} lines for a {n:,}-message path")
    log(f"NDJSON of the {n:,}-message path: {seconds:.1f} s, RSS {base_kib / 1024:.0f} MiB before, peak"
        f" {peak_kib / 1024:.0f} MiB")  # fmt: skip
    return {"lines": lines, "seconds": seconds, "rss_before_kib": base_kib, "peak_rss_kib": peak_kib}


def _reset_peak_rss(pid: int) -> None:
    """Resets VmHWM, the process's peak RSS, to its current RSS (Linux ≥ 4.0: clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


# ---------------------------------------------------------------- the table


def table(results: dict[str, list[Sample]], single: Singles) -> tuple[str, bool]:
    s = {key: report.summarize(samples) for key, samples in results.items() if samples}
    labels = {m.key: m.label for m in MEASURED}
    rows = [
        "| figure | req/s | p50 ms | p99 ms | CPU ms/req | non-2xx | against | ratio | target | verdict |",
        "|---|---:|---:|---:|---:|---:|---|---:|---|---|",
    ]
    all_ok = True

    def row(key: str, against: str, ratio: str, target: str, ok: bool | None) -> None:
        nonlocal all_ok
        x = s[key]
        ok = None if ok is None else ok and x.failures == 0
        if ok is not None:
            all_ok &= ok
        verdict = "" if ok is None else ("PASS" if ok else "MISS")
        rows.append(
            f"| {labels[key]} | {x.rps:,.0f} | {x.p50_ms:.1f} | {x.p99_ms:.1f} | {x.cpu_ms:.2f} | {x.failures} "
            f"| {against} | {ratio} | {target} | {verdict} |"
        )

    base = s["linear_first"]
    row("linear_first", "", "", "", None)
    for key in PAGE_KEYS:
        x = s[key]
        rps_cost, p50_cost = base.rps / x.rps if x.rps else float("inf"), x.p50_ms / base.p50_ms
        cost = max(rps_cost, p50_cost)
        row(key, "linear first page", f"**{cost:.2f}** ({rps_cost:.2f} / {p50_cost:.2f})",
            f"cost ≤ {MAX_PAGE_COST}", cost <= MAX_PAGE_COST)  # fmt: skip
    ys = s["append_ys"]
    row("append_ys", "", "", "", None)
    for key in ("append", "append_parent"):
        x = s[key]
        rps, p99 = x.rps / ys.rps, x.p99_ms / ys.p99_ms
        row(key, "yardstick append", f"**{rps:.2f}** / **{p99:.2f}**",
            f"req/s ≥ {report.MIN_RPS_RATIO}, p99 ≤ {report.MAX_P99_RATIO}",
            rps >= report.MIN_RPS_RATIO and p99 <= report.MAX_P99_RATIO and ys.failures == 0)  # fmt: skip
    switch = s["switch"].p99_ms / s["append"].p99_ms
    row("switch", "append, no parent_id (p99)", f"**{switch:.2f}**", f"p99 ≤ {MAX_SWITCH_P99}",
        switch <= MAX_SWITCH_P99)  # fmt: skip
    median = statistics.median(single.fork_ms)
    fork_ok = median <= MAX_FORK_MS
    all_ok &= fork_ok
    rows.append(
        f"| fork of a {FORK_PATH:,}-message path (10 segments), sequential | | **{median:.1f}** median | "
        f"{max(single.fork_ms):.1f} max | | 0 | | | median ≤ {MAX_FORK_MS:.0f} ms | {'PASS' if fork_ok else 'MISS'} |"
    )
    big_ok = single.fork_big_messages == SEGMENTS * SEGMENT_LENGTH
    all_ok &= big_ok
    rows.append(
        f"| fork of the {SEGMENTS * SEGMENT_LENGTH:,}-message path (1,000 segments) | | "
        f"**{single.fork_big_ms:,.0f}** | | | 0 | | | completes | {'PASS' if big_ok else 'MISS'} |"
    )
    nd = single.ndjson
    if "pending" in nd:
        rows.append(
            f"| NDJSON of the 100,000-message path | | | | | | | | constant memory | PENDING: {nd['pending']} |"
        )
    else:
        growth = (nd["peak_rss_kib"] - nd["rss_before_kib"]) / 1024
        nd_ok = growth <= MAX_NDJSON_GROWTH_MIB
        all_ok &= nd_ok
        rows.append(
            f"| NDJSON of the 100,000-message path, one stream | {nd['lines'] / nd['seconds']:,.0f} lines/s | "
            f"{nd['seconds'] * 1000:,.0f} total | | | 0 | RSS before {nd['rss_before_kib'] / 1024:.0f} MiB | "
            f"peak **{nd['peak_rss_kib'] / 1024:.0f}** MiB (+{growth:.0f}) | peak growth ≤ {MAX_NDJSON_GROWTH_MIB} MiB"
            f" | {'PASS' if nd_ok else 'MISS'} |"
        )
    return "\n".join(rows), all_ok


def rounds_table(results: dict[str, list[Sample]]) -> str:
    rows = ["| figure | req/s per round | p50 ms per round | p99 ms per round |", "|---|---|---|---|"]
    for m in MEASURED:
        samples = results.get(m.key, [])
        if samples:
            rows.append(
                f"| {m.label} | {', '.join(f'{x.rps:,.0f}' for x in samples)} | "
                f"{', '.join(f'{x.p50_ms:.1f}' for x in samples)} | {', '.join(f'{x.p99_ms:.1f}' for x in samples)} |"
            )
    return "\n".join(rows)
