"""Message request bodies and the wire form of a message."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from threadstore.limits import JsonObject
from threadstore.timestamps import rfc3339

Role = Literal["user", "assistant", "system", "tool"]


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role = "user"
    content: StrictStr
    metadata: JsonObject = Field(default_factory=dict)


class MessageOut(BaseModel):
    """Documents the response shape; handlers serialize plain dicts for speed."""

    id: str
    object: Literal["message"]
    thread_id: str
    seq: int
    role: Role
    content: str
    metadata: dict[str, Any]
    created_at: str


class MessageList(BaseModel):
    object: Literal["list"]
    data: list[MessageOut]
    next_cursor: str | None
    has_more: bool


def message_json(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "object": "message",
        "thread_id": row["thread_id"],
        "seq": row["seq"],
        "role": row["role"],
        "content": row["content"],
        "metadata": row["metadata"],
        "created_at": rfc3339(row["created_at"]),
    }
