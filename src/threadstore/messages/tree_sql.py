"""The SQL text of a thread's message tree: paths, siblings, the descent to the newest leaf.

The tree is stored as branch segments (db/tables.py, `branches`; design and measurements in
docs/branches-design.md). These statements are text, not expressions: recursive CTEs with LATERAL probes whose
shape must not move (each probe written so it can only be an index lookup, whatever the statistics say:
tests/db/test_query_plans.py pins them). One builder per statement, with a PostgreSQL and a SQLite form.

A page of a path. `p` fixes the path and the depth range [lo, hi] of the page:
  asc:  the path to the message at :leaf_depth of branch :sb, or to the tip of :sb (:leaf_depth NULL), or to the
        thread's current message (both NULL), and depths after :after (0 on the first page). The active path's
        cursor names the tip of its branch, not a depth: the current message is that tip, and appends after it
        extend the same branch, so a later page shows them (as a line did in version 1) while a branch switch,
        which moves the current message to another branch, does not splice another path in;
  desc: the path above branch :sb (NULL: the current leaf's), depths before :before (NULL: from the leaf).
`la` finds the segment holding depth hi by jump pointers (O(log #segments) rows); `seg` walks up from it
through the segments that hold [lo, hi]; the messages are one (branch_id, depth) range scan per segment.
"""

from __future__ import annotations

import re
from functools import cache

from threadstore.db.tables import MESSAGE_REPLY_COLUMNS

# A message's content as the API shows it: an unfinished reply's stored text and then its deltas in order
# (message_deltas); only such a message pays for the probe. `__CONTENT__` is replaced per dialect (`for_dialect`).
MESSAGE_COLUMNS = (
    "m.id, m.thread_id, m.seq, m.role, __CONTENT__ AS content, m.metadata, m.created_at,"
    " m.parent_id, m.depth, m.sibling_index, m.branch_id, m.status, m.finish_reason, m.model, m.input_tokens,"
    " m.output_tokens, m.parts, m.feedback_rating, m.feedback_comment, m.feedback_at"
)
_DELTAS = {
    "postgresql": "(SELECT string_agg(md.text, '' ORDER BY md.start) FROM message_deltas md"
    " WHERE md.message_id = m.id)",
    # SQLite before 3.44 has no ORDER BY in an aggregate: group_concat over an ordered subquery.
    "sqlite": "(SELECT group_concat(md.text, '') FROM"
    " (SELECT text FROM message_deltas WHERE message_id = m.id ORDER BY start) AS md)",
}


# A new child's reply and search columns (db/tables.py) and their bind parameters, named alike.
_REPLY_COLUMNS = ", ".join(MESSAGE_REPLY_COLUMNS)
_REPLY_VALUES = ", ".join(f":{name}" for name in MESSAGE_REPLY_COLUMNS)


def for_dialect(sql: str, dialect: str) -> str:
    """`sql` with the content expression of `dialect`."""
    grown = f"m.content || coalesce({_DELTAS[dialect]}, '')"
    return sql.replace("__CONTENT__", f"CASE WHEN m.status = 'in_progress' THEN {grown} ELSE m.content END")


_P = {
    "asc": """
p AS (SELECT sb, :after + 1 AS lo, least(:after + :lim, leaf_depth) AS hi, leaf_depth
      FROM (SELECT coalesce(:sb, th.current_branch_id) AS sb,
                   coalesce(:leaf_depth, CASE WHEN :sb IS NULL THEN th.current_depth
                                              ELSE (SELECT max(t.depth) FROM messages t WHERE t.branch_id = :sb) END)
                       AS leaf_depth
            FROM threads th WHERE th.id = :thread AND th.user_id = :user) AS pl)""",
    "desc": """
p AS (SELECT coalesce(:sb, th.current_branch_id) AS sb,
             greatest(1, coalesce(:before - 1, th.current_depth) - :lim + 1) AS lo,
             coalesce(:before - 1, th.current_depth) AS hi, th.current_depth AS leaf_depth
      FROM threads th WHERE th.id = :thread AND th.user_id = :user)""",
}


def _branch(alias: str, condition: str, dialect: str) -> str:
    """One branch row by id. PostgreSQL: LATERAL … LIMIT 1, a primary-key probe whatever the statistics (a
    recursive CTE's row estimate is a guess; on a small table the planner would hash a whole scan)."""
    if dialect == "postgresql":
        return (
            "CROSS JOIN LATERAL (SELECT id, thread_id, parent_branch_id, fork_depth, jump_id, jump_fork_depth "
            f"FROM branches WHERE id = {condition} LIMIT 1) AS {alias}"
        )
    return f"JOIN branches {alias} ON {alias}.id = {condition}"


def _segments(dialect: str) -> str:
    # SQLite: CROSS JOIN fixes the join order (it has no statistics for a CTE and would scan messages and probe
    # the segments), INDEXED BY the index, and one lower bound per segment makes the probe a range.
    rows = (
        f"""CROSS JOIN LATERAL (SELECT {MESSAGE_COLUMNS} FROM messages m
                 WHERE m.branch_id = seg.id AND m.depth > seg.fork_depth AND m.depth >= p.lo AND m.depth <= seg.hi
                 ORDER BY m.depth LIMIT :lim) AS m"""
        if dialect == "postgresql"
        else "CROSS JOIN messages m INDEXED BY uq_messages_branch_depth"
        " ON m.branch_id = seg.id AND m.depth BETWEEN max(seg.fork_depth + 1, p.lo) AND seg.hi"
    )
    columns = "m.*" if dialect == "postgresql" else MESSAGE_COLUMNS
    return f"""
la(id, parent_branch_id, fork_depth, jump_id, jump_fork_depth) AS (
    SELECT b.id, b.parent_branch_id, b.fork_depth, b.jump_id, b.jump_fork_depth
    FROM p {_branch("b", "p.sb", dialect)}
    WHERE b.thread_id = :thread  -- a cursor's branch is the client's word: it must be this thread's
    UNION ALL
    SELECT b.id, b.parent_branch_id, b.fork_depth, b.jump_id, b.jump_fork_depth
    FROM la JOIN p ON la.fork_depth >= p.hi
    {_branch("b", "CASE WHEN la.jump_fork_depth >= p.hi THEN la.jump_id ELSE la.parent_branch_id END", dialect)}
),
seg(id, parent_branch_id, fork_depth, hi) AS (
    SELECT la.id, la.parent_branch_id, la.fork_depth, p.hi FROM la JOIN p ON la.fork_depth < p.hi
    UNION ALL
    SELECT b.id, b.parent_branch_id, b.fork_depth, seg.fork_depth
    FROM seg JOIN p ON seg.fork_depth >= p.lo {_branch("b", "seg.parent_branch_id", dialect)}
),
rows_ AS (
    SELECT {columns}, seg.parent_branch_id AS spb, seg.fork_depth AS sfd
    FROM seg CROSS JOIN p {rows}
)"""


# sibling_count of a row: the children of its parent's position — the branch's own next message plus the
# branches started there. The first row of a fork counts both at its fork's position (2 probes); any other row
# continues its branch: 1 + the forks at its parent, counted once per page segment in `fk`.
_SIBLING_COUNT = """
CASE WHEN r.depth = r.sfd + 1 AND r.spb IS NOT NULL
     THEN (SELECT count(*) FROM branches f WHERE f.parent_branch_id = r.spb AND f.fork_depth = r.sfd)
          + (SELECT count(*) FROM messages c WHERE c.branch_id = r.spb AND c.depth = r.depth)
     ELSE 1 + coalesce((SELECT fk.n FROM fk WHERE fk.pb = r.branch_id AND fk.fd = r.depth - 1), 0)
END"""


def _forks(dialect: str) -> str:
    """The forks at every depth a row of the page is a child of: one index range scan per segment,
    materialized once instead of a probe per row."""
    join = "JOIN" if dialect == "postgresql" else "CROSS JOIN"
    forks = "branches f" if dialect == "postgresql" else "branches f INDEXED BY ix_branches_forks"
    return f""",
fk AS MATERIALIZED (SELECT f.parent_branch_id AS pb, f.fork_depth AS fd, count(*) AS n
       FROM seg CROSS JOIN p
       {join} {forks} ON f.parent_branch_id = seg.id
                            AND f.fork_depth BETWEEN greatest(seg.fork_depth, p.lo - 1) AND seg.hi - 1
       GROUP BY f.parent_branch_id, f.fork_depth)"""


@cache
def path_page(order: str, dialect: str, counts: bool = True) -> str:
    """A page of a path with each row's sibling_count, `p.sb` (the path's branch, for the cursor) and the
    path's leaf depth. Parameters: thread, user, lim, and after / leaf_depth / sb (asc) or before / sb (desc)."""
    count = _SIBLING_COUNT if counts else "1"
    sql = (
        f"WITH RECURSIVE {_P[order]},{_segments(dialect)}{_forks(dialect) if counts else ''}\n"
        f"SELECT r.*, p.leaf_depth, p.sb AS path_branch, {count} AS sibling_count FROM rows_ r, p"
        f" ORDER BY r.depth {order.upper()}"
    )
    return sql if dialect == "postgresql" else _sqlite(sql)


@cache
def first_user_on_path(dialect: str) -> str:
    """The first user message of the active path, looked for in windows of :lim depths (the ascending page
    without counts, filtered): the caller moves :after on while a window has none. MATERIALIZED: SQLite would
    otherwise flatten the filter into the page and plan it anew (25 ms, measured)."""
    return (
        f"WITH w AS MATERIALIZED ({path_page('asc', dialect, counts=False)})\n"
        "SELECT w.content, w.depth, w.leaf_depth FROM w WHERE w.role = 'user' ORDER BY w.depth LIMIT 1"
    )


def _sqlite(sql: str) -> str:
    sql = sql.replace("greatest(", "max(").replace("least(", "min(")
    return re.sub(r"::(int|bigint|text|integer|varchar)\b", "", sql)


# A message of the thread, owned by the user: where it is in the tree.
POSITION = """
SELECT m.branch_id, m.depth, b.parent_branch_id, b.fork_depth
FROM messages m JOIN branches b ON b.id = m.branch_id JOIN threads t ON t.id = m.thread_id
WHERE m.id = :mid AND m.thread_id = :thread AND t.user_id = :user"""

# siblings_of: the children of the message's parent position (P, f) — P's own message at f + 1 and the first
# messages of the branches started at (P, f) — in sibling_index order, one keyset page.
_SIBLING_POSITION = """
me AS (SELECT m.branch_id, m.depth, b.parent_branch_id, b.fork_depth
       FROM messages m JOIN branches b ON b.id = m.branch_id JOIN threads t ON t.id = m.thread_id
       WHERE m.id = :mid AND m.thread_id = :thread AND t.user_id = :user),
pos AS (SELECT CASE WHEN depth = fork_depth + 1 AND parent_branch_id IS NOT NULL THEN parent_branch_id
                    ELSE branch_id END AS pb, depth - 1 AS f FROM me)"""


@cache
def siblings_page(order: str, dialect: str) -> str:
    after, direction = ("> :after", "ASC") if order == "asc" else ("< :after", "DESC")
    return f"""WITH {_SIBLING_POSITION},
cand AS (
    SELECT {MESSAGE_COLUMNS} FROM messages m
    WHERE m.branch_id = (SELECT pb FROM pos) AND m.depth = (SELECT f FROM pos) + 1 AND m.sibling_index {after}
    UNION ALL
    SELECT * FROM (SELECT {MESSAGE_COLUMNS} FROM
                       (SELECT b.id, b.sibling_index FROM branches b
                        WHERE b.parent_branch_id = (SELECT pb FROM pos) AND b.fork_depth = (SELECT f FROM pos)
                          AND b.sibling_index {after} ORDER BY b.sibling_index {direction} LIMIT :lim) AS fb
                   JOIN messages m ON m.branch_id = fb.id AND m.depth = (SELECT f FROM pos) + 1) AS forks
)
SELECT cand.*,
       (SELECT count(*) FROM branches b, pos WHERE b.parent_branch_id = pos.pb AND b.fork_depth = pos.f)
       + (SELECT count(*) FROM messages c, pos WHERE c.branch_id = pos.pb AND c.depth = pos.f + 1) AS sibling_count
FROM cand ORDER BY sibling_index {direction} LIMIT :lim"""


# Every message of the thread by seq (view=all), each with its sibling_count.
_COUNT_OF_ROW = """
CASE WHEN m.depth = b.fork_depth + 1 AND b.parent_branch_id IS NOT NULL
     THEN (SELECT count(*) FROM branches f
           WHERE f.parent_branch_id = b.parent_branch_id AND f.fork_depth = b.fork_depth)
          + (SELECT count(*) FROM messages c WHERE c.branch_id = b.parent_branch_id AND c.depth = m.depth)
     ELSE 1 + (SELECT count(*) FROM branches f WHERE f.parent_branch_id = m.branch_id AND f.fork_depth = m.depth - 1)
END"""


@cache
def seq_page(order: str, after: bool) -> str:
    bound = "" if not after else (" AND m.seq > :after" if order == "asc" else " AND m.seq < :after")
    return f"""SELECT {MESSAGE_COLUMNS}, {_COUNT_OF_ROW} AS sibling_count
FROM messages m JOIN threads t ON t.id = m.thread_id JOIN branches b ON b.id = m.branch_id
WHERE m.thread_id = :thread AND t.user_id = :user{bound}
ORDER BY m.seq {order.upper()} LIMIT :lim"""


ONE_MESSAGE = f"""SELECT {MESSAGE_COLUMNS}, {_COUNT_OF_ROW} AS sibling_count
FROM messages m JOIN threads t ON t.id = m.thread_id JOIN branches b ON b.id = m.branch_id
WHERE m.id = :mid AND m.thread_id = :thread AND t.user_id = :user"""


# The leaf reached from a message by following, at each step, the child created last (the highest
# sibling_index). Along a branch the next message is that child unless a branch started at that depth is newer:
# the first such fork (lowest fork_depth, newest there) is where the descent leaves the branch. One row per
# branch changed on the way, not per message; the leaf is the tip of the last branch.
_DESCENT_STEP = {
    "postgresql": """SELECT nx.id, nx.fork_depth + 1, d.n + 1 FROM d CROSS JOIN LATERAL (
        SELECT f.id, f.fork_depth FROM branches f
        LEFT JOIN messages c ON c.branch_id = f.parent_branch_id AND c.depth = f.fork_depth + 1
        WHERE f.parent_branch_id = d.b AND f.fork_depth >= d.dep
          AND (c.sibling_index IS NULL OR f.sibling_index > c.sibling_index)
        ORDER BY f.fork_depth, f.sibling_index DESC LIMIT 1) AS nx""",
    "sqlite": """SELECT f.id, f.fork_depth + 1, d.n + 1 FROM d CROSS JOIN branches f ON f.id = (
        SELECT g.id FROM branches g
        LEFT JOIN messages c ON c.branch_id = g.parent_branch_id AND c.depth = g.fork_depth + 1
        WHERE g.parent_branch_id = d.b AND g.fork_depth >= d.dep
          AND (c.sibling_index IS NULL OR g.sibling_index > c.sibling_index)
        ORDER BY g.fork_depth, g.sibling_index DESC LIMIT 1)""",
}


@cache
def descent(dialect: str) -> str:
    """From branch :start_branch at depth :start_depth (depth 0 on the trunk: from the newest root)."""
    return f"""WITH RECURSIVE d(b, dep, n) AS (
    SELECT CAST(:start_branch AS bigint), CAST(:start_depth AS integer), 0
    UNION ALL
    {_DESCENT_STEP[dialect]}
),
last AS (SELECT b, n FROM d ORDER BY n DESC LIMIT 1)
SELECT m.id, m.branch_id, m.depth FROM last CROSS JOIN messages m
WHERE m.branch_id = last.b ORDER BY m.depth DESC LIMIT 1"""


# --------------------------------------------------------------------------------------------------- writes

_BUMP = """message_count = threads.message_count + 1, version = threads.version + 1,
           updated_at = greatest(threads.updated_at, :now),
           last_message_at = greatest(coalesce(threads.last_message_at, :now), :now)"""

# Where a new child of :parent goes (NULL :parent: a new root, a child of the trunk at depth 0), read under the
# thread's lock or at the version its update is conditional on: the position (P, f), its continuation's
# sibling_index (NULL: P has no message at f + 1, so the child continues P), the highest sibling_index of the
# branches started there, and P's jump pointer data for a new branch.
_PARENT_POSITION = {
    "message": "SELECT m.branch_id AS pb, m.depth AS f FROM messages m WHERE m.id = :parent AND m.thread_id = :thread",
    "root": "SELECT b.id AS pb, 0 AS f FROM branches b WHERE b.thread_id = :thread AND b.parent_branch_id IS NULL",
}
CHILD_PLACE = {
    kind: f"""WITH p AS ({position})
SELECT p.pb, p.f,
       (SELECT c.sibling_index FROM messages c WHERE c.branch_id = p.pb AND c.depth = p.f + 1) AS cont_idx,
       (SELECT max(f.sibling_index) FROM branches f WHERE f.parent_branch_id = p.pb AND f.fork_depth = p.f) AS fork_idx,
       (SELECT count(*) FROM branches f WHERE f.parent_branch_id = p.pb AND f.fork_depth = p.f) AS forks,
       b.level, b.fork_depth, b.jump_level,
       j.jump_id AS jj_id, j.jump_level AS jj_level, j.jump_fork_depth AS jj_fork_depth
FROM p JOIN branches b ON b.id = p.pb LEFT JOIN branches j ON j.id = b.jump_id"""
    for kind, position in _PARENT_POSITION.items()
}

# Append with parent_id on PostgreSQL as ONE statement: the place is read from the statement's snapshot and the
# thread's UPDATE applies only if the row still has the version that snapshot saw (READ COMMITTED re-checks the
# condition on the latest row after waiting). A writer that committed in between makes it match nothing: no row
# is written (the new branch is inserted only FROM the update's result, with an id drawn before), the
# repository raises Stale, and the unit runs again as a transaction that locks the thread first.
_JUMPS = "par.jj_id IS NOT NULL AND par.level - par.jump_level = par.jump_level - par.jj_level"
CHILD_PG = {
    kind: f"""WITH p AS ({position}),
v AS (SELECT version FROM threads WHERE id = :thread AND user_id = :user AND status = 'active'),
s AS (SELECT p.pb, p.f,
             (SELECT c.sibling_index FROM messages c WHERE c.branch_id = p.pb AND c.depth = p.f + 1) AS cont_idx,
             (SELECT max(b.sibling_index) FROM branches b
              WHERE b.parent_branch_id = p.pb AND b.fork_depth = p.f) AS fork_idx,
             (SELECT count(*) FROM branches b WHERE b.parent_branch_id = p.pb AND b.fork_depth = p.f) AS forks
      FROM p),
pos AS (SELECT CASE WHEN s.cont_idx IS NULL THEN s.pb ELSE nextval(pg_get_serial_sequence('branches', 'id')) END
                   AS branch_id,
               s.pb, s.f, s.cont_idx, s.f + 1 AS depth, s.forks + 1 + (s.cont_idx IS NOT NULL)::int AS sibling_count,
               greatest(coalesce(s.cont_idx, 0), coalesce(s.fork_idx, 0)) + 1 AS sibling_index FROM s),
t AS (UPDATE threads SET {_BUMP}, current_message_id = :id, current_branch_id = pos.branch_id,
             current_depth = pos.depth
      FROM pos, v WHERE threads.id = :thread AND threads.version = v.version
      RETURNING threads.message_count AS seq),
par AS (SELECT b.id, b.level, b.fork_depth, b.jump_level, j.jump_id AS jj_id, j.jump_level AS jj_level,
               j.jump_fork_depth AS jj_fork_depth
        FROM pos JOIN branches b ON b.id = pos.pb LEFT JOIN branches j ON j.id = b.jump_id
        WHERE pos.cont_idx IS NOT NULL),
nb AS (INSERT INTO branches (id, thread_id, parent_branch_id, fork_depth, sibling_index, level, jump_id,
                             jump_level, jump_fork_depth)
       SELECT pos.branch_id, :thread, par.id, pos.f, pos.sibling_index, par.level + 1,
              CASE WHEN {_JUMPS} THEN par.jj_id ELSE par.id END,
              CASE WHEN {_JUMPS} THEN par.jj_level ELSE par.level END,
              CASE WHEN {_JUMPS} THEN par.jj_fork_depth ELSE par.fork_depth END
       FROM pos, par, t RETURNING id),
w AS (INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at, branch_id, depth, parent_id,
                            sibling_index, {_REPLY_COLUMNS})
      SELECT :id, :thread, t.seq, :role, :content, :metadata, :now, pos.branch_id, pos.depth, :parent,
             pos.sibling_index, {_REPLY_VALUES}
      FROM pos, t RETURNING seq, depth, sibling_index, (SELECT sibling_count FROM pos) AS sibling_count)"""
    for kind, position in _PARENT_POSITION.items()
}

# DELETE a message = its subtree: the rest of its branch from its depth on, and every branch started below it
# (recursively). In the transaction, after the thread's lock. The branch itself goes when its first message
# does (the trunk stays: it anchors the roots). TARGET is read first: the message's place, and whether it
# starts its branch.
DELETE_TARGET = """SELECT m.branch_id AS b, m.depth AS d, b.parent_branch_id, b.fork_depth,
       CASE WHEN m.depth = b.fork_depth + 1 AND b.parent_branch_id IS NOT NULL THEN 1 ELSE 0 END AS drop_self
FROM messages m JOIN branches b ON b.id = m.branch_id WHERE m.id = :mid AND m.thread_id = :thread"""
_DOOMED = """WITH RECURSIVE doomed(id) AS (
    SELECT f.id FROM branches f WHERE f.parent_branch_id = :b AND f.fork_depth >= :d
    UNION ALL
    SELECT f.id FROM doomed JOIN branches f ON f.parent_branch_id = doomed.id
)"""
DELETE_SUBTREE = {
    "postgresql": [
        f"""{_DOOMED},
ids AS (SELECT coalesce(array_agg(id), ARRAY[]::bigint[]) AS a FROM doomed),
dm1 AS (DELETE FROM messages WHERE branch_id = :b AND depth >= :d RETURNING 1),
dm2 AS (DELETE FROM messages WHERE branch_id = ANY((SELECT a FROM ids)::bigint[]) RETURNING 1),
db AS (DELETE FROM branches
       WHERE id = ANY((SELECT a FROM ids)::bigint[] || CASE WHEN :drop_self = 1 THEN CAST(:b AS bigint) END)
       RETURNING 1)
SELECT (SELECT count(*) FROM dm1) + (SELECT count(*) FROM dm2) AS deleted"""
    ],
    # SQLite has no writing CTE: three statements, the message counts summed by the caller.
    "sqlite": [
        f"DELETE FROM messages WHERE branch_id IN ({_DOOMED} SELECT id FROM doomed)",
        "DELETE FROM messages WHERE branch_id = :b AND depth >= :d",
        f"DELETE FROM branches WHERE id IN ({_DOOMED} SELECT id FROM doomed) OR (id = :b AND :drop_self = 1)",
    ],
}
NEWEST_MESSAGE = "SELECT created_at FROM messages WHERE thread_id = :thread ORDER BY seq DESC LIMIT 1"
MESSAGE_EXISTS = "SELECT 1 FROM messages WHERE id = :mid"

# POST /fork: the path root → :mid of thread :source copied as a chain onto the new thread's trunk, one
# statement (one snapshot: the path as of one moment). The segments of the path are found through `branches`;
# each segment's messages are one (branch_id, depth) range. Parents come from lag() over the path, so the
# statement is linear in the path's length. New ids are made in the statement (PostgreSQL: 122 random bits of
# a UUIDv4, base64url; SQLite: ts_new_id(), the app's own id function registered on the connection).
_FORK_PATH = """seg(id, parent_branch_id, fork_depth, hi) AS (
    SELECT b.id, b.parent_branch_id, b.fork_depth, m.depth FROM messages m JOIN branches b ON b.id = m.branch_id
    WHERE m.id = :mid AND m.thread_id = :source
    UNION ALL
    SELECT b.id, b.parent_branch_id, b.fork_depth, seg.fork_depth
    FROM seg JOIN branches b ON b.id = seg.parent_branch_id
)"""
# A copy is finished: an unfinished reply is copied as it stands, `incomplete`. Feedback stays with the original.
_COPIED = "INSERT INTO messages (id, thread_id, seq, role, content, metadata, created_at, branch_id, depth, parent_id,"
_COPIED += " sibling_index, status, finish_reason, model, input_tokens, output_tokens, parts, search_terms)"
_COPIED_COLUMNS = (
    "__CONTENT__ AS content, m.metadata, m.created_at,"
    " CASE WHEN m.status = 'in_progress' THEN 'incomplete' ELSE m.status END AS status,"
    " m.finish_reason, m.model, m.input_tokens, m.output_tokens, m.parts, m.search_terms"
)
# A copy is indexed as its source (the same owner); an unfinished source has no terms yet: its copy is indexed
# by the fork once copied (messages.service.copy_path).
_COPIED_VALUES = "status, finish_reason, model, input_tokens, output_tokens, parts, search_terms"
COPY_PATH = {
    "postgresql": f"""WITH RECURSIVE {_FORK_PATH},
src AS (SELECT m.depth, m.role, {_COPIED_COLUMNS},
               'msg_' || left(translate(encode(uuid_send(gen_random_uuid()), 'base64'), '+/', '-_'), 22) AS new_id
        FROM seg JOIN messages m ON m.branch_id = seg.id AND m.depth > seg.fork_depth AND m.depth <= seg.hi),
cm AS ({_COPIED}
       SELECT src.new_id, :new_thread, src.depth, src.role, src.content, src.metadata, src.created_at, :trunk,
              src.depth, lag(src.new_id) OVER (ORDER BY src.depth), 1, {_COPIED_VALUES}
       FROM src RETURNING id, seq, created_at)
SELECT cm.id, cm.seq, cm.created_at FROM cm ORDER BY cm.seq DESC LIMIT 1""",
    "sqlite": f"""WITH RECURSIVE {_FORK_PATH},
src AS MATERIALIZED (SELECT ts_new_id('msg') AS new_id, m.depth, m.role, {_COPIED_COLUMNS}
        FROM seg JOIN messages m ON m.branch_id = seg.id AND m.depth > seg.fork_depth AND m.depth <= seg.hi)
{_COPIED}
SELECT new_id, :new_thread, depth, role, content, metadata, created_at, :trunk, depth,
       lag(new_id) OVER (ORDER BY depth), 1, {_COPIED_VALUES} FROM src ORDER BY depth""",
}
LAST_COPIED = "SELECT id, seq, created_at FROM messages WHERE thread_id = :new_thread ORDER BY seq DESC LIMIT 1"
