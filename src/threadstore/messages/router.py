"""HTTP for messages: parse, call the service inside a unit of work, shape the response."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Query, Response

from threadstore.http.deps import CurrentUser, DatabaseDep, LimitsDep, SettingsDep
from threadstore.http.responses import json_bytes
from threadstore.idempotency import service as idempotency
from threadstore.idempotency.schemas import StoredResponse
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
    keyed = idempotency.parse_key(idempotency_key, user_id, "POST", path, body)
    ttl = settings.idempotency_ttl_seconds
    stored = await idempotency.write_once(
        database, keyed, ttl, _created, service.append, user_id, thread_id, body, limits
    )
    return stored.to_http()


def _created(message: dict[str, Any]) -> StoredResponse:
    return StoredResponse(201, json_bytes(message), thread_id=message["thread_id"])


@router.get("", response_model=MessageList, operation_id="list_messages")
async def list_messages(
    thread_id: str,
    user_id: CurrentUser,
    database: DatabaseDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: str | None = None,
    order: Literal["asc", "desc"] = "asc",
) -> Response:
    page = await database.read(service.list_messages, user_id, thread_id, limit=limit, cursor=cursor, order=order)
    return Response(json_bytes(page), media_type="application/json")
