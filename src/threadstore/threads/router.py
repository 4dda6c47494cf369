"""HTTP for threads: parse, call the service inside a unit of work, shape the response. No rules, no SQL."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response

from threadstore.errors import PreconditionRequired, Unprocessable
from threadstore.http.deps import CurrentUser, DatabaseDep, LimitsDep, SettingsDep
from threadstore.http.preconditions import ANY, none_match, parse_if_match
from threadstore.http.responses import etag, json_bytes, thread_response
from threadstore.idempotency import service as idempotency
from threadstore.idempotency.schemas import StoredResponse
from threadstore.threads import service
from threadstore.threads.auto_rename import auto_rename
from threadstore.threads.schemas import ThreadCreate, ThreadList, ThreadOut, ThreadPatch

router = APIRouter(prefix="/api/threads", tags=["threads"])

METADATA_FILTER_PREFIX = "metadata."
MAX_METADATA_FILTERS = 16  # each count is a distinct statement shape; bounded like everything else


@router.post("", status_code=201, response_model=ThreadOut, operation_id="create_thread")
async def create_thread(
    body: ThreadCreate,
    user_id: CurrentUser,
    database: DatabaseDep,
    limits: LimitsDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    keyed = idempotency.parse_key(idempotency_key, user_id, "POST", "/api/threads", body)
    ttl = settings.idempotency_ttl_seconds
    stored = await idempotency.write_once(database, keyed, ttl, _created, service.create, user_id, body, limits)
    return stored.to_http()


def _created(thread: dict[str, Any]) -> StoredResponse:
    headers = {"Location": f"/api/threads/{thread['id']}", "ETag": etag(thread["version"])}
    return StoredResponse(201, json_bytes(thread), headers, thread_id=thread["id"])


@router.get("", response_model=ThreadList, operation_id="list_threads")
async def list_threads(
    request: Request,
    user_id: CurrentUser,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: str | None = None,
    status: Literal["active", "archived", "all"] = "active",
    q: Annotated[str | None, Query(max_length=256)] = None,
) -> Response:
    query = service.ListQuery(status=status, limit=limit, cursor=cursor, q=q, metadata=_metadata_filters(request))
    page = await database.read(service.list_threads, user_id, query)
    return Response(json_bytes(page), media_type="application/json")


def _metadata_filters(request: Request) -> list[tuple[str, str]]:
    filters = []
    for name, value in request.query_params.multi_items():
        if name.startswith(METADATA_FILTER_PREFIX):
            key = name[len(METADATA_FILTER_PREFIX) :]
            if not key:
                raise Unprocessable(
                    "A metadata filter needs a key.", errors=[{"loc": ["query", name], "msg": "empty key"}]
                )
            filters.append((key, value))
    if len(filters) > MAX_METADATA_FILTERS:
        raise Unprocessable(
            f"At most {MAX_METADATA_FILTERS} metadata filters.",
            errors=[{"loc": ["query", "metadata"], "msg": "too many metadata filters"}],
        )
    return filters


@router.get("/{thread_id}", response_model=ThreadOut, operation_id="get_thread")
async def get_thread(
    thread_id: str,
    user_id: CurrentUser,
    database: DatabaseDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    thread = await database.read(service.get, user_id, thread_id)
    if none_match(if_none_match, thread["version"]):
        return Response(status_code=304, headers={"ETag": etag(thread["version"])})
    return thread_response(thread)


@router.patch("/{thread_id}", response_model=ThreadOut, operation_id="update_thread")
async def update_thread(
    thread_id: str,
    body: ThreadPatch,
    user_id: CurrentUser,
    database: DatabaseDep,
    limits: LimitsDep,
    settings: SettingsDep,
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    version = parse_if_match(if_match)
    if version is None and settings.require_if_match:
        raise PreconditionRequired("This server requires If-Match on updates.")
    expected = None if version == ANY else version
    thread = await database.write(service.patch, user_id, thread_id, body, expected, limits)
    return thread_response(thread)


@router.delete(
    "/{thread_id}",
    response_model=ThreadOut,
    operation_id="delete_thread",
    responses={204: {"description": "Deleted for good (permanent=true)"}},
)
async def delete_thread(
    thread_id: str, user_id: CurrentUser, database: DatabaseDep, permanent: bool = False
) -> Response:
    if permanent:
        await database.write(service.delete_permanently, user_id, thread_id)
        return Response(status_code=204)
    thread = await database.write(service.archive, user_id, thread_id)
    return thread_response(thread)


@router.post("/{thread_id}/auto-rename", response_model=ThreadOut, operation_id="auto_rename_thread")
async def auto_rename_thread(
    request: Request, thread_id: str, user_id: CurrentUser, database: DatabaseDep, limits: LimitsDep
) -> Response:
    renamed = await auto_rename(database, request.app.state.title_generator, limits, user_id, thread_id)
    return thread_response(renamed.thread, headers={"X-Title-Source": renamed.source})
