"""HTTP for threads: parse, call the service inside a unit of work, shape the response. No rules, no SQL."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Request, Response
from pydantic.json_schema import SkipJsonSchema

from threadstore.errors import PreconditionRequired
from threadstore.http.deps import (
    CurrentUser,
    CursorQuery,
    DatabaseDep,
    LimitQuery,
    LimitsDep,
    SettingsDep,
    ThreadIdPath,
)
from threadstore.http.metadata_filters import METADATA_FILTERS_DESCRIPTION, metadata_filters
from threadstore.http.openapi import AUTHENTICATED, ETAG, JSON_BODY, ONE_THREAD, REPLAYED, problem, thread_links
from threadstore.http.preconditions import ANY, IF_MATCH_PATTERN, none_match, parse_if_match
from threadstore.http.read_after import ReadAfterHeader
from threadstore.http.responses import etag, json_bytes, thread_response
from threadstore.idempotency import service as idempotency
from threadstore.idempotency.schemas import IdempotencyKeyHeader, StoredResponse
from threadstore.threads import service
from threadstore.threads.auto_rename import auto_rename
from threadstore.threads.schemas import ThreadCreate, ThreadFork, ThreadList, ThreadOut, ThreadPatch

router = APIRouter(prefix="/api/threads", tags=["threads"], responses=AUTHENTICATED)

_THREAD_ANSWER: dict[int | str, dict[str, Any]] = {200: {"headers": ETAG}}


@router.post(
    "",
    status_code=201,
    response_model=ThreadOut,
    operation_id="create_thread",
    responses={
        201: {
            "description": "Created; a repeat of an Idempotency-Key replays this answer as it was.",
            "headers": {
                "Location": {"description": "The thread's URL.", "required": True, "schema": {"type": "string"}},
                **ETAG,
                **REPLAYED,
            },
            "links": thread_links("$response.body#/id"),
        },
        **JSON_BODY,
        **problem(404, "The Idempotency-Key created a thread that was deleted for good since."),
        **problem(409, "A request with this Idempotency-Key is still in flight."),
    },
)
async def create_thread(
    body: ThreadCreate,
    user_id: CurrentUser,
    database: DatabaseDep,
    limits: LimitsDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    keyed = idempotency.parse_key(idempotency_key, user_id, "POST", "/api/threads", body)
    ttl = settings.idempotency_ttl_seconds
    stored = await idempotency.write_once(database, keyed, ttl, _created, service.create, user_id, body, limits)
    return stored.to_http()


def _created(thread: dict[str, Any]) -> StoredResponse:
    headers = {"Location": f"/api/threads/{thread['id']}", "ETag": etag(thread["version"])}
    return StoredResponse(201, json_bytes(thread), headers, thread_id=thread["id"])


@router.get(
    "",
    response_model=ThreadList,
    operation_id="list_threads",
    dependencies=[ReadAfterHeader],
    description=METADATA_FILTERS_DESCRIPTION,
    responses=problem(422),
)
async def list_threads(
    request: Request,
    user_id: CurrentUser,
    database: DatabaseDep,
    limit: LimitQuery = 20,
    cursor: CursorQuery = None,
    status: Literal["active", "archived", "all"] = "active",
    q: Annotated[str | SkipJsonSchema[None], Query(max_length=256)] = None,
) -> Response:
    query = service.ListQuery(status=status, limit=limit, cursor=cursor, q=q, metadata=metadata_filters(request))
    page = await database.read(service.list_threads, user_id, query)
    return Response(json_bytes(page), media_type="application/json")


@router.get(
    "/{thread_id}",
    response_model=ThreadOut,
    operation_id="get_thread",
    dependencies=[ReadAfterHeader],
    responses={
        **_THREAD_ANSWER,
        304: {"description": "If-None-Match names the current version.", "headers": ETAG},
        **ONE_THREAD,
        **problem(422, "X-Read-After is malformed."),
    },
)
async def get_thread(
    thread_id: ThreadIdPath,
    user_id: CurrentUser,
    database: DatabaseDep,
    if_none_match: Annotated[str | SkipJsonSchema[None], Header()] = None,
) -> Response:
    thread = await database.read(service.get, user_id, thread_id)
    if none_match(if_none_match, thread["version"]):
        return Response(status_code=304, headers={"ETag": etag(thread["version"])})
    return thread_response(thread)


@router.patch(
    "/{thread_id}",
    response_model=ThreadOut,
    operation_id="update_thread",
    responses={
        **_THREAD_ANSWER,
        **ONE_THREAD,
        **JSON_BODY,
        **problem(409, "The thread is archived and stays so: restore it (status active) to change it."),
        **problem(412),
        **problem(428),
    },
)
async def update_thread(
    thread_id: ThreadIdPath,
    body: ThreadPatch,
    user_id: CurrentUser,
    database: DatabaseDep,
    limits: LimitsDep,
    settings: SettingsDep,
    if_match: Annotated[
        str | SkipJsonSchema[None],
        Header(
            description='Change only if the thread is at this version (its ETag, e.g. "4"), or exists (`*`).',
            json_schema_extra={"pattern": IF_MATCH_PATTERN},
        ),
    ] = None,
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
    description="Archives the thread (a soft delete: it stays readable, and can be restored); with "
    "`permanent=true`, deletes it and its messages for good.",
    responses={
        200: {"description": "Archived (or already archived): the thread.", "headers": ETAG},
        204: {"description": "Deleted for good (permanent=true)."},
        **ONE_THREAD,
        **problem(422),
    },
)
async def delete_thread(
    thread_id: ThreadIdPath, user_id: CurrentUser, database: DatabaseDep, permanent: bool = False
) -> Response:
    if permanent:
        await database.write(service.delete_permanently, user_id, thread_id)
        return Response(status_code=204)
    thread = await database.write(service.archive, user_id, thread_id)
    return thread_response(thread)


@router.post(
    "/{thread_id}/fork",
    status_code=201,
    response_model=ThreadOut,
    operation_id="fork_thread",
    description="A new thread holding a copy of the path from the root to `message_id` (default: the current "
    "message), as a chain with new ids; works on archived sources.",
    responses={
        201: {
            "description": "Forked; a repeat of an Idempotency-Key replays this answer as it was.",
            "headers": {
                "Location": {"description": "The new thread's URL.", "required": True, "schema": {"type": "string"}},
                **ETAG,
                **REPLAYED,
            },
            "links": thread_links("$response.body#/id"),
        },
        **JSON_BODY,
        **ONE_THREAD,
        **problem(409, "A request with this Idempotency-Key is still in flight."),
    },
)
async def fork_thread(
    thread_id: ThreadIdPath,
    body: ThreadFork,
    user_id: CurrentUser,
    database: DatabaseDep,
    limits: LimitsDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    keyed = idempotency.parse_key(idempotency_key, user_id, "POST", f"/api/threads/{thread_id}/fork", body)
    ttl = settings.idempotency_ttl_seconds
    stored = await idempotency.write_once(
        database, keyed, ttl, _created, service.fork, user_id, thread_id, body, limits
    )
    return stored.to_http()


@router.post(
    "/{thread_id}/auto-rename",
    response_model=ThreadOut,
    operation_id="auto_rename_thread",
    responses={
        200: {
            "description": "Titled from its first user message.",
            "headers": {
                **ETAG,
                "X-Title-Source": {
                    "description": "Who wrote the title: the configured LLM, or the built-in summarizer.",
                    "required": True,
                    "schema": {"type": "string", "enum": ["llm", "fallback"]},
                },
            },
        },
        **ONE_THREAD,
        **problem(409, "The thread is archived, or changed while its title was being generated."),
        **problem(422, "The thread has no user message to title it from."),
    },
)
async def auto_rename_thread(
    request: Request, thread_id: ThreadIdPath, user_id: CurrentUser, database: DatabaseDep, limits: LimitsDep
) -> Response:
    renamed = await auto_rename(database, request.app.state.title_generator, limits, user_id, thread_id)
    return thread_response(renamed.thread, headers={"X-Title-Source": renamed.source})
