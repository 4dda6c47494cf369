"""HTTP for messages: parse, call the service inside a unit of work, shape the response."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic.json_schema import SkipJsonSchema

from threadstore.errors import Unprocessable
from threadstore.http import negotiation
from threadstore.http.deps import (
    CurrentUser,
    CursorQuery,
    DatabaseDep,
    LimitQuery,
    LimitsDep,
    MessageIdPath,
    SettingsDep,
    ThreadIdPath,
)
from threadstore.http.openapi import AUTHENTICATED, JSON_BODY, ONE_THREAD, REPLAYED, problem
from threadstore.http.read_after import ReadAfterHeader
from threadstore.http.responses import JSON, json_bytes
from threadstore.http.streaming import NDJSON, ClosingStreamingResponse, ndjson_lines
from threadstore.idempotency import service as idempotency
from threadstore.idempotency.schemas import IdempotencyKeyHeader, StoredResponse
from threadstore.messages import replies, service
from threadstore.messages.schemas import (
    DeltaCreate,
    DeltaOut,
    FeedbackPut,
    MessageCreate,
    MessageList,
    MessageOut,
    MessagePatch,
)
from threadstore.threads import service as threads

router = APIRouter(
    prefix="/api/threads/{thread_id}/messages", tags=["messages"], responses={**AUTHENTICATED, **ONE_THREAD}
)


@router.post(
    "",
    status_code=201,
    response_model=MessageOut,
    operation_id="create_message",
    responses={
        201: {"description": "Appended; a repeat of an Idempotency-Key replays this answer.", "headers": REPLAYED},
        **JSON_BODY,
        **problem(409, "The thread is archived, or a request with this Idempotency-Key is still in flight."),
    },
)
async def create_message(
    thread_id: ThreadIdPath,
    body: MessageCreate,
    user_id: CurrentUser,
    database: DatabaseDep,
    limits: LimitsDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    path = f"/api/threads/{thread_id}/messages"
    keyed = idempotency.parse_key(idempotency_key, user_id, "POST", path, body)
    ttl = settings.idempotency_ttl_seconds
    stored = await idempotency.write_once(
        database, keyed, ttl, _created, service.append, user_id, thread_id, body, limits
    )
    return stored.to_http()


def _created(message: dict[str, Any]) -> StoredResponse:
    return StoredResponse(201, json_bytes(message), thread_id=message["thread_id"], message_id=message["id"])


def _selection(
    leaf: Annotated[
        str | SkipJsonSchema[None], Query(description="List the path from the root to this message.")
    ] = None,
    siblings_of: Annotated[
        str | SkipJsonSchema[None], Query(description="List the messages sharing this message's parent.")
    ] = None,
    view: Annotated[
        Literal["all"] | SkipJsonSchema[None], Query(description="`all`: every message of the thread by seq.")
    ] = None,
) -> service.Selection:
    named = [
        name for name, value in (("leaf", leaf), ("siblings_of", siblings_of), ("view", view)) if value is not None
    ]
    if len(named) > 1:
        raise Unprocessable(
            "leaf, siblings_of and view are mutually exclusive; give at most one.",
            errors=[{"loc": ["query", name], "msg": "mutually exclusive"} for name in named],
        )
    return service.Selection(leaf=leaf, siblings_of=siblings_of, all=view == "all")


SelectionQuery = Annotated[service.Selection, Depends(_selection)]


# The list's representations, the default first: NDJSON only for a client that prefers it (API.md, "Whole-
# conversation reads"). Both vary with Accept, so a cache keeps them apart.
_LIST_TYPES = (JSON, NDJSON)
_VARY = {"Vary": "Accept"}


@router.get(
    "",
    response_model=MessageList,
    operation_id="list_messages",
    responses={
        200: {
            "description": "A page of the selection (JSON); or, when `Accept` prefers `application/x-ndjson`, "
            "every message of the selection, one message per line, in the requested `order` (`limit` and "
            "`cursor` are ignored). A stream that fails after it started ends without its last chunk: a "
            "truncated transfer, never a short answer that looks complete.",
            "headers": {"Vary": {"description": "`Accept`", "schema": {"type": "string"}}},
            "content": {NDJSON: {"schema": {"$ref": "#/components/schemas/MessageOut"}}},
        },
        **problem(422),
    },
    dependencies=[ReadAfterHeader],
)
async def list_messages(
    request: Request,
    thread_id: ThreadIdPath,
    user_id: CurrentUser,
    database: DatabaseDep,
    selection: SelectionQuery,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    order: Literal["asc", "desc"] = "asc",
) -> Response:
    if negotiation.choose(", ".join(request.headers.getlist("accept")), _LIST_TYPES) == NDJSON:
        # The first page is read here, before the status line: a 404 or 422 is still an ordinary answer.
        pages = await service.every_page(database, user_id, thread_id, order=order, selection=selection)
        return ClosingStreamingResponse(ndjson_lines(pages), media_type=NDJSON, headers=_VARY)
    page = await database.read(
        service.list_messages, user_id, thread_id, limit=limit, cursor=cursor, order=order, selection=selection
    )
    return Response(json_bytes(page), media_type=JSON, headers=_VARY)


@router.get(
    "/{message_id}",
    response_model=MessageOut,
    operation_id="get_message",
    responses=problem(422),
    dependencies=[ReadAfterHeader],
)
async def get_message(
    thread_id: ThreadIdPath, message_id: MessageIdPath, user_id: CurrentUser, database: DatabaseDep
) -> Response:
    message = await database.read(service.get, user_id, thread_id, message_id)
    return Response(json_bytes(message), media_type="application/json")


@router.delete(
    "/{message_id}",
    status_code=204,
    operation_id="delete_message",
    description="Deletes the message and all its descendants (a branch), atomically.",
    responses={
        204: {"description": "Deleted, with every message below it."},
        **problem(409, "The thread is archived."),
        **problem(422),
    },
)
async def delete_message(
    thread_id: ThreadIdPath, message_id: MessageIdPath, user_id: CurrentUser, database: DatabaseDep
) -> Response:
    await database.write(threads.delete_branch, user_id, thread_id, message_id)
    return Response(status_code=204)


@router.patch(
    "/{message_id}",
    response_model=MessageOut,
    operation_id="update_message",
    description="Ends or amends an in_progress reply (status, content, finish_reason, model, usage), or merges "
    "`metadata` in any status. A PATCH whose values all equal the stored ones changes nothing (200).",
    responses={
        **JSON_BODY,
        **problem(409, "The thread is archived, or the message's status forbids the change (reason `state`)."),
        **problem(422),
    },
)
async def update_message(
    thread_id: ThreadIdPath,
    message_id: MessageIdPath,
    body: MessagePatch,
    user_id: CurrentUser,
    database: DatabaseDep,
    limits: LimitsDep,
) -> Response:
    message = await database.write(replies.patch, user_id, thread_id, message_id, body, limits)
    return Response(json_bytes(message), media_type=JSON)


@router.post(
    "/{message_id}/deltas",
    response_model=DeltaOut,
    operation_id="append_delta",
    description="Appends text to an in_progress reply at `offset`, the stored length the client believes in. "
    "A retry of a stored delta changes nothing and answers as the first time.",
    responses={
        **JSON_BODY,
        **problem(
            409,
            "`offset` is not the stored length (reason `offset`, with `length`), the message is not in_progress "
            "or holds parts (`state`), or the thread is archived.",
        ),
        **problem(422, "Past the content limit, or not valid."),
    },
)
async def append_delta(
    thread_id: ThreadIdPath,
    message_id: MessageIdPath,
    body: DeltaCreate,
    user_id: CurrentUser,
    database: DatabaseDep,
    limits: LimitsDep,
) -> Response:
    answer = await database.write(replies.append_delta, user_id, thread_id, message_id, body, limits)
    return Response(json_bytes(answer), media_type=JSON)


@router.put(
    "/{message_id}/feedback",
    response_model=MessageOut,
    operation_id="put_feedback",
    description="Sets the message's feedback, replacing any earlier one.",
    responses={**JSON_BODY, **problem(409, "The thread is archived."), **problem(422)},
)
async def put_feedback(
    thread_id: ThreadIdPath, message_id: MessageIdPath, body: FeedbackPut, user_id: CurrentUser, database: DatabaseDep
) -> Response:
    message = await database.write(replies.put_feedback, user_id, thread_id, message_id, body)
    return Response(json_bytes(message), media_type=JSON)


@router.delete(
    "/{message_id}/feedback",
    status_code=204,
    operation_id="delete_feedback",
    description="Removes the message's feedback (204 also when it had none).",
    responses={204: {"description": "No feedback remains."}, **problem(409, "The thread is archived."), **problem(422)},
)
async def delete_feedback(
    thread_id: ThreadIdPath, message_id: MessageIdPath, user_id: CurrentUser, database: DatabaseDep
) -> Response:
    await database.write(replies.delete_feedback, user_id, thread_id, message_id)
    return Response(status_code=204)
