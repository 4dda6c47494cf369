"""Thread request bodies and the wire form of a thread."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, StrictStr

from threadstore.limits import JsonObject
from threadstore.messages.schemas import MessageCreate
from threadstore.timestamps import rfc3339, rfc3339_or_none

Status = Literal["active", "archived"]


class ThreadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: StrictStr | None = None
    metadata: JsonObject | None = None
    messages: list[MessageCreate] | None = None


class ThreadPatch(BaseModel):
    """Absent and null differ: `title: null` clears the title; `metadata: null` is rejected."""

    model_config = ConfigDict(extra="forbid")

    title: StrictStr | None = None
    metadata: JsonObject | None = None
    status: Status | None = None


class ThreadOut(BaseModel):
    id: str
    object: Literal["thread"]
    title: str | None
    metadata: dict[str, Any]
    status: Status
    created_at: str
    updated_at: str
    archived_at: str | None
    message_count: int
    last_message_at: str | None
    version: int


class ThreadList(BaseModel):
    object: Literal["list"]
    data: list[ThreadOut]
    next_cursor: str | None
    has_more: bool


def thread_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "thread",
        "title": row["title"],
        "metadata": row["metadata"],
        "status": row["status"],
        "created_at": rfc3339(row["created_at"]),
        "updated_at": rfc3339(row["updated_at"]),
        "archived_at": rfc3339_or_none(row["archived_at"]),
        "message_count": row["message_count"],
        "last_message_at": rfc3339_or_none(row["last_message_at"]),
        "version": row["version"],
    }
