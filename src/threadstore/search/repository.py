"""All SQL of search: one statement finds a page of the caller's threads with their best matches.

The index is the `search_terms` of messages and threads (db/search_terms.py): PostgreSQL's GIN over tsvectors,
SQLite's FTS5 table over `search_docs`. A parsed query (search/text.py) is rendered here per database:

- PostgreSQL: tsquery *input* syntax with each term quoted, so nothing in it is parsed as an operator or
  normalized again: `'#owner' & 'word' & 'new' <-> 'york' & 'pre':*`.
- SQLite: FTS5 syntax with each term a quoted string: `owner : "u…" AND terms : ("word" AND "new york" AND
  "pre" *)`.

Terms hold only letters, digits and marks, so quoting them needs no escaping; the owner's term makes the index
intersect one user's entries with the words' (docs/performance.md, "Search").
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Float,
    Select,
    String,
    TextClause,
    and_,
    bindparam,
    column,
    false,
    func,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy.engine import RowMapping

from threadstore.db.search_terms import SearchTerms, owner_term
from threadstore.db.tables import (
    HAS_STATUS,
    THREAD_STATUSES,
    UNINDEXED_MESSAGE,
    UNINDEXED_THREAD,
    UtcDateTime,
    messages,
    storable,
    threads,
)
from threadstore.db.thread_filters import metadata_equals, metadata_params
from threadstore.db.unit_of_work import Tx
from threadstore.search.text import Group, Query

TITLE_WEIGHT = 2  # a title match ranks above the same match in a message
MATCHES_PER_THREAD = 3

_HITS = {
    "postgresql": f"""
SELECT m.thread_id, m.id AS message_id, ts_rank(m.search_terms, CAST(:s_words AS tsquery), 1)::float8 AS score
FROM messages m WHERE m.search_terms @@ CAST(:s_owned AS tsquery)
UNION ALL
SELECT t.id, NULL, {TITLE_WEIGHT} * ts_rank(ts.search_terms, CAST(:s_words AS tsquery), 1)::float8
FROM thread_search ts JOIN threads t ON t.id = ts.thread_id
WHERE ts.search_terms @@ CAST(:s_owned AS tsquery) AND t.user_id = :s_user""",
    "sqlite": f"""
SELECT d.thread_id, d.message_id,
       ts_search_rank(d.terms, :s_words) * CASE WHEN d.message_id IS NULL THEN {TITLE_WEIGHT} ELSE 1 END AS score
FROM search_fts JOIN search_docs d ON d.id = search_fts.rowid WHERE search_fts MATCH :s_owned""",
}
_EXCLUDED = {
    "postgresql": """
SELECT m.thread_id FROM messages m WHERE m.search_terms @@ CAST(:s_excluded AS tsquery)
UNION
SELECT t.id FROM thread_search ts JOIN threads t ON t.id = ts.thread_id
WHERE ts.search_terms @@ CAST(:s_excluded AS tsquery) AND t.user_id = :s_user""",
    "sqlite": """
SELECT d.thread_id FROM search_fts JOIN search_docs d ON d.id = search_fts.rowid WHERE search_fts MATCH :s_excluded""",
}
_MATCHES: ColumnElement[int] = literal_column(str(MATCHES_PER_THREAD))
_THREAD_COLUMNS = [c for c in threads.c if c.name not in ("user_id", "search_terms")]


def _tsquery_group(group: Group) -> str:
    terms = [f"'{term}'" for term in group.terms]
    if group.prefix:
        terms[-1] += ":*"
    return terms[0] if len(terms) == 1 else "(" + " <-> ".join(terms) + ")"


def _fts_group(group: Group) -> str:
    return '"' + " ".join(group.terms) + '"' + (" *" if group.prefix else "")


def _params(dialect: str, user_id: str, query: Query) -> dict[str, Any]:
    if dialect == "postgresql":
        owner = f"'{owner_term(user_id)}'"
        words = " & ".join(_tsquery_group(g) for g in query.required)
        params: dict[str, Any] = {"s_words": words, "s_owned": f"{owner} & {words}"}
        if query.excluded:
            params["s_excluded"] = f"{owner} & (" + " | ".join(_tsquery_group(g) for g in query.excluded) + ")"
        return params
    owner = f'owner : "u{user_id.encode().hex()}"'
    words = " AND ".join(_fts_group(g) for g in query.required)
    groups = [[list(g.terms), g.prefix] for g in query.required]
    params = {"s_words": orjson.dumps(groups).decode(), "s_owned": f"{owner} AND terms : ({words})"}
    if query.excluded:
        params["s_excluded"] = f"{owner} AND terms : (" + " OR ".join(_fts_group(g) for g in query.excluded) + ")"
    return params


def _inline(dialect: str, *names: str) -> list[BindParameter[str]]:
    """PostgreSQL: the tsqueries written into the statement's text, not bound. A prepared statement may be
    planned once for any value (a generic plan), and PostgreSQL cannot estimate an unknown tsquery: it guessed
    a scan of every message cheaper than the GIN index (tests/db/test_query_plans.py). Written in, every query
    is planned for its words. Safe: a term holds only letters, digits and marks, and the value is rendered as
    a quoted literal."""
    return [bindparam(name, type_=String(), literal_execute=dialect == "postgresql") for name in names]


@lru_cache(maxsize=256)
def _statement(dialect: str, status: str, recent: bool, after: bool, excluded: bool, filters: int) -> Select[Any]:
    """A page of matching threads (at most `p_limit`), each row one of its best matches (thread columns, the
    thread's score, the match's message id, score and text; a title match has no message)."""
    hits = (
        text(_HITS[dialect])
        .bindparams(*_inline(dialect, "s_words", "s_owned"))
        .columns(column("thread_id", String), column("message_id", String), column("score", Float))
        .cte("hits")
    )
    ranked = select(hits.c.thread_id, func.max(hits.c.score).label("score")).group_by(hits.c.thread_id).cte("ranked")
    conditions = [threads.c.user_id == bindparam("s_user")]
    if status != "all":
        conditions.append(HAS_STATUS[status])
    else:
        conditions.append(threads.c.status.in_(THREAD_STATUSES))
    if excluded:
        gone = (
            text(_EXCLUDED[dialect])
            .bindparams(*_inline(dialect, "s_excluded"))
            .columns(column("thread_id", String))
            .cte("excluded")
        )
        conditions.append(threads.c.id.not_in(select(gone.c.thread_id)))
    if filters:
        conditions.append(func.coalesce(and_(*(metadata_equals(dialect, i) for i in range(filters))), false()))
    when = bindparam("c_updated_at", type_=UtcDateTime())
    if recent:
        order = [threads.c.updated_at.desc(), threads.c.id.desc()]
        if after:
            conditions.append(tuple_(threads.c.updated_at, threads.c.id) < tuple_(when, bindparam("c_id")))
    else:
        order = [ranked.c.score.desc(), threads.c.updated_at.desc(), threads.c.id.desc()]
        if after:
            key = tuple_(bindparam("c_score", type_=Float()), when, bindparam("c_id"))
            conditions.append(tuple_(ranked.c.score, threads.c.updated_at, threads.c.id) < key)
    page = (
        select(*_THREAD_COLUMNS, ranked.c.score.label("thread_score"))
        .join_from(ranked, threads, threads.c.id == ranked.c.thread_id)
        .where(*conditions)
        .order_by(*order)
        .limit(bindparam("p_limit"))
        .cte("page")
    )
    # The best matches of each thread of the page: a title before a message of the same score.
    best = (
        select(
            hits.c.thread_id,
            hits.c.message_id,
            hits.c.score,
            func.row_number()
            .over(
                partition_by=hits.c.thread_id,
                order_by=[hits.c.score.desc(), hits.c.message_id.is_(None).desc(), hits.c.message_id],
            )
            .label("rank"),
        )
        .where(hits.c.thread_id.in_(select(page.c.id)))
        .subquery("best")
    )
    sort = [page.c.updated_at.desc(), page.c.id.desc()]
    if not recent:
        sort.insert(0, page.c.thread_score.desc())
    return (
        select(
            page,
            best.c.message_id.label("match_message_id"),
            best.c.score.label("match_score"),
            messages.c.content.label("match_content"),
        )
        .join_from(
            page, best, and_(best.c.thread_id == page.c.id, best.c.rank <= literal_column(str(MATCHES_PER_THREAD)))
        )
        .outerjoin(messages, messages.c.id == best.c.message_id)
        .order_by(*sort, best.c.rank)
    )


async def find(
    tx: Tx,
    user_id: str,
    query: Query,
    *,
    status: str,
    recent: bool,
    limit: int,
    after: tuple[float, datetime, str] | None,
    metadata_equals_: Sequence[tuple[str, str]],
) -> list[RowMapping]:
    """A page of the user's threads matching `query` (at most `limit`), a row per best match, in page order."""
    if not storable(user_id, *(part for pair in metadata_equals_ for part in pair)):
        return []
    stmt = _statement(tx.dialect, status, recent, after is not None, bool(query.excluded), len(metadata_equals_))
    params = _params(tx.dialect, user_id, query) | {"s_user": user_id, "p_limit": limit}
    params |= metadata_params(tx.dialect, metadata_equals_)
    if after is not None:
        params["c_score"], params["c_updated_at"], params["c_id"] = after
    return list((await tx.conn.execute(stmt, params)).mappings().all())


# ------------------------------------------------------------------------------------------------- reindex
# Batches in id order. A message's text does not change once it is finished, so its terms are computed from
# the row read and written while it is still finished; a title can change at any time, so its terms are
# written only if the title is still the one read (a concurrent PATCH wrote its own). A value equal to the
# stored one is not written again (no WAL, no trigger).
# A pending batch reads the partial index of unindexed rows (db/tables.py): its WHERE clause holds the index's
# predicate as written there, or the planner could not prove the index applies.
_MESSAGE_BATCH = (
    "SELECT m.id, m.content, t.user_id FROM"
    " (SELECT id, content, thread_id FROM messages WHERE id > :after AND {which} ORDER BY id LIMIT :lim) m"
    " JOIN threads t ON t.id = m.thread_id ORDER BY m.id"
)
_THREAD_BATCH = "SELECT id, user_id, title FROM threads WHERE id > :after{pending} ORDER BY id LIMIT :lim"
_DIFFERENT = {"postgresql": "IS DISTINCT FROM CAST(:terms AS tsvector)", "sqlite": "IS NOT :terms"}
_SAME_TITLE = {"postgresql": "IS NOT DISTINCT FROM :title", "sqlite": "IS :title"}


@lru_cache(maxsize=8)
def _batch(table: str, pending: bool) -> TextClause:
    if table == "messages":
        return text(_MESSAGE_BATCH.format(which=f"({UNINDEXED_MESSAGE})" if pending else "status <> 'in_progress'"))
    return text(_THREAD_BATCH.format(pending=f" AND ({UNINDEXED_THREAD})" if pending else ""))


@lru_cache(maxsize=4)
def _set_terms(table: str, dialect: str) -> TextClause:
    condition = "status <> 'in_progress'" if table == "messages" else f"title {_SAME_TITLE[dialect]}"
    sql = f"UPDATE {table} SET search_terms = :terms WHERE id = :id AND {condition}"
    return text(f"{sql} AND search_terms {_DIFFERENT[dialect]}").bindparams(bindparam("terms", type_=SearchTerms()))


async def index_batch(tx: Tx, table: str, after: str, limit: int, pending: bool) -> list[RowMapping]:
    """Up to `limit` rows of `table` ("messages": id, content, user_id; "threads": id, user_id, title) after id
    `after`, to index (`pending`: only those not indexed yet)."""
    rows = await tx.conn.execute(_batch(table, pending), {"after": after, "lim": limit})
    return list(rows.mappings().all())


async def set_terms(tx: Tx, table: str, values: Sequence[dict[str, Any]]) -> None:
    """Writes each `{"id", "terms"[, "title"]}` of `values` where it still applies and differs."""
    if values:
        await tx.conn.execute(_set_terms(table, tx.dialect), list(values))
