"""HTTP for search: parse, read in a unit of work, return the page. No rules, no SQL."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response

from threadstore.http.deps import CurrentUser, CursorQuery, DatabaseDep
from threadstore.http.metadata_filters import METADATA_FILTERS_DESCRIPTION, metadata_filters
from threadstore.http.openapi import AUTHENTICATED, problem
from threadstore.http.read_after import ReadAfterHeader
from threadstore.http.responses import json_bytes
from threadstore.search import service
from threadstore.search.schemas import SearchResults

router = APIRouter(prefix="/api/search", tags=["search"], responses=AUTHENTICATED)


@router.get(
    "",
    response_model=SearchResults,
    operation_id="search",
    dependencies=[ReadAfterHeader],
    description="Finds the caller's threads by their title and their messages' text: every word of `q` in one "
    'text, `"quoted phrases"` in order, `-word` excludes a thread, the last word also as a prefix. '
    + METADATA_FILTERS_DESCRIPTION,
    responses=problem(422),
)
async def search(
    request: Request,
    user_id: CurrentUser,
    database: DatabaseDep,
    q: Annotated[str, Query(min_length=1, max_length=256, description="What to look for.")],
    limit: Annotated[int, Query(ge=1, le=50, description="The most threads on one page.")] = 20,
    cursor: CursorQuery = None,
    status: Literal["active", "archived", "all"] = "active",
    sort: Literal["relevance", "recent"] = "relevance",
) -> Response:
    query = service.SearchQuery(
        q=q, limit=limit, cursor=cursor, status=status, sort=sort, metadata=metadata_filters(request)
    )
    page = await service.search(database, user_id, query)
    return Response(json_bytes(page), media_type="application/json")
