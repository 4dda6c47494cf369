"""Message request bodies and the wire form of a message."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from threadstore.ids import id_pattern
from threadstore.limits import Content, Metadata
from threadstore.timestamps import Timestamp, rfc3339

Role = Literal["user", "assistant", "system", "tool"]


class MessageCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role = "user"
    content: Content
    metadata: Metadata = Field(default_factory=dict)


# The response shape, for the document: handlers serialize plain dicts for speed.
class MessageOut(BaseModel):
    id: Annotated[str, Field(pattern=id_pattern("msg"))]
    object: Literal["message"]
    thread_id: Annotated[str, Field(pattern=id_pattern("thr"))]
    seq: Annotated[int, Field(ge=1)]
    role: Role
    content: str
    metadata: dict[str, Any]
    created_at: Timestamp


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
