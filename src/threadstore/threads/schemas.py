"""Thread request bodies and the wire form of a thread."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from threadstore.ids import id_pattern
from threadstore.limits import InitialMessages, Metadata, MetadataPatch, Title
from threadstore.messages.schemas import MessageContent
from threadstore.timestamps import Timestamp, TimestampOrNull, rfc3339, rfc3339_or_none

Status = Literal["active", "archived"]
ThreadId = Annotated[str, Field(pattern=id_pattern("thr"))]


class ThreadCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    metadata: Metadata | None = None
    messages: Annotated[list[MessageContent], InitialMessages] | None = None


class ThreadPatch(BaseModel):
    """Only the fields named change. `title: null` clears the title; `metadata` and `status` cannot be null."""

    # A null metadata or status is refused by the service (422, with its own message); SkipJsonSchema keeps
    # null out of the document, which must not offer what the server refuses.
    model_config = ConfigDict(extra="forbid")

    title: Title | None = None
    metadata: MetadataPatch | SkipJsonSchema[None] = None
    status: Status | SkipJsonSchema[None] = None
    # Any string: one naming no message of the thread is the service's 422 (the same whatever it names).
    current_message_id: Annotated[str, Field(max_length=64)] | SkipJsonSchema[None] = None


class ThreadFork(BaseModel):
    """A new thread holding a copy of the path root → `message_id` (default: the current message). `title` and
    `metadata` default to the source's; a given `metadata` replaces it."""

    model_config = ConfigDict(extra="forbid")

    # Any string: one naming no message of the source is the service's 422 (the same whatever it names).
    message_id: Annotated[str, Field(max_length=64)] | SkipJsonSchema[None] = None
    title: Title | None = None
    metadata: Metadata | SkipJsonSchema[None] = None


class ThreadOut(BaseModel):
    id: ThreadId
    object: Literal["thread"]
    title: str | None
    metadata: dict[str, Any]
    status: Status
    created_at: Timestamp
    updated_at: Timestamp
    archived_at: TimestampOrNull
    message_count: Annotated[int, Field(ge=0)]
    last_message_at: TimestampOrNull
    version: Annotated[int, Field(ge=1)]
    current_message_id: Annotated[str | None, Field(pattern=id_pattern("msg"))]


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
        # The column counts every message ever created (it hands out seqs); deleted branches are subtracted.
        "message_count": row["message_count"] - row["deleted_count"],
        "last_message_at": rfc3339_or_none(row["last_message_at"]),
        "version": row["version"],
        "current_message_id": row["current_message_id"],
    }
