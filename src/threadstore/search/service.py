"""Search's rules: parse the query, find a page of the caller's threads, build each result and its snippets.

The index is written by the writes themselves (search/index.py); this module only reads it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import RowMapping

from threadstore import cursors
from threadstore.db.unit_of_work import Database, Tx, from_replica
from threadstore.search import repository
from threadstore.search.snippets import snippet
from threadstore.search.text import Query, parse
from threadstore.threads.schemas import thread_json


@dataclass(frozen=True)
class SearchQuery:
    q: str
    limit: int
    cursor: str | None
    status: str
    sort: str
    metadata: Sequence[tuple[str, str]]


async def search(database: Database, user_id: str, request: SearchQuery) -> dict[str, Any]:
    """A page of results: the threads and their best matches read in one unit, the snippets made after it
    (folding long texts is not done while a connection is held)."""
    query = parse(request.q)
    after = cursors.decode_search_cursor(request.cursor) if request.cursor else None
    if query.empty:  # only exclusions, or no word at all: nothing is looked for
        return {"object": "list", "data": [], "next_cursor": None, "has_more": False}
    rows = await database.read(_page, user_id, query, request, after)
    results: list[dict[str, Any]] = []
    last: Any = None
    for row in rows:
        if last is None or row["id"] != last["id"]:
            if len(results) == request.limit:
                break
            results.append(
                {"object": "search_result", "thread": thread_json(row), "score": row["thread_score"], "matches": []}
            )
            last = row
        text = row["title"] if row["match_message_id"] is None else row["match_content"]
        results[-1]["matches"].append({"message_id": row["match_message_id"], "snippet": snippet(text or "", query)})
    has_more = len({row["id"] for row in rows}) > request.limit
    next_cursor = None
    if has_more:
        next_cursor = cursors.encode_search_cursor(last["thread_score"], last["updated_at"], last["id"])
    return {"object": "list", "data": results, "next_cursor": next_cursor, "has_more": has_more}


@from_replica
async def _page(
    tx: Tx, user_id: str, query: Query, request: SearchQuery, after: tuple[float, datetime, str] | None
) -> list[RowMapping]:
    return await repository.find(
        tx,
        user_id,
        query,
        status=request.status,
        recent=request.sort == "recent",
        limit=request.limit + 1,  # one more thread tells whether there is a next page
        after=after,
        metadata_equals_=request.metadata,
    )
