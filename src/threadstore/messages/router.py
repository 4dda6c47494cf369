"""HTTP for messages: parse, call the service inside a unit of work, shape the response."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Response

from threadstore.db.unit_of_work import Tx
from threadstore.http.deps import CurrentUser, DatabaseDep, LimitsDep, SettingsDep
from threadstore.http.responses import json_bytes, stored_response
from threadstore.idempotency import service as idempotency
from threadstore.idempotency.service import StoredResponse
from threadstore.messages import service
from threadstore.messages.schemas import MessageCreate, MessageList, MessageOut

router = APIRouter(prefix="/api/threads/{thread_id}/messages", tags=["messages"])


@router.post("", status_code=201, response_model=MessageOut, operation_id="create_message")
async def create_message(
    thread_id: str,
    body: MessageCreate,
    user_id: CurrentUser,
    database: DatabaseDep,
    limits: LimitsDep,
    settings: SettingsDep,
    idempotency_key: Annotated[str | None, Header()] = None,
) -> Response:
    path = f"/api/threads/{thread_id}/messages"
    keyed = idempotency.parse_key(idempotency_key, "POST", path, body)

    async def append(tx: Tx) -> StoredResponse:
        message = await service.append(tx, user_id, thread_id, body, limits)
        return StoredResponse(201, json_bytes(message))

    ttl = settings.idempotency_ttl_seconds
    return stored_response(await idempotency.write_once(database, user_id, keyed, ttl, append, single_statement=True))


@router.get("", response_model=MessageList, operation_id="list_messages")
async def list_messages(
    thread_id: str,
    user_id: CurrentUser,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: str | None = None,
    order: Literal["asc", "desc"] = "asc",
) -> Response:
    page = await database.read(
        lambda tx: service.list_messages(tx, user_id, thread_id, limit=limit, cursor=cursor, order=order)
    )
    return Response(json_bytes(page), media_type="application/json")
