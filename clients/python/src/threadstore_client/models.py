"""Typed objects of the HTTP contract (API.md v1 + v2). Responses are read leniently: a field the server adds
later is kept (`extra="allow"`), never an error, so an older client keeps working against a newer server.
Request-side helpers (`NewMessage`, the parts) dump to exactly the JSON the server expects."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

T = TypeVar("T")


class _Object(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)


# --- structured content -------------------------------------------------------------------------------------


class TextPart(_Object):
    type: Literal["text"] = "text"
    text: str


class ReasoningPart(_Object):
    type: Literal["reasoning"] = "reasoning"
    text: str


class ToolCallPart(_Object):
    type: Literal["tool_call"] = "tool_call"
    id: str
    name: str
    arguments: str


class ToolResultPart(_Object):
    type: Literal["tool_result"] = "tool_result"
    tool_call_id: str
    content: str
    is_error: bool = False


class ImagePart(_Object):
    type: Literal["image"] = "image"
    url: str


class FilePart(_Object):
    type: Literal["file"] = "file"
    url: str
    name: str | None = None
    mime_type: str | None = None


class UnknownPart(_Object):
    """A part of a type this client does not know yet (a newer server): kept as it came."""

    type: str


_PART_TYPES = frozenset({"text", "reasoning", "tool_call", "tool_result", "image", "file"})


def _part_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return kind if kind in _PART_TYPES else "unknown"


Part = Annotated[
    Annotated[TextPart, Tag("text")]
    | Annotated[ReasoningPart, Tag("reasoning")]
    | Annotated[ToolCallPart, Tag("tool_call")]
    | Annotated[ToolResultPart, Tag("tool_result")]
    | Annotated[ImagePart, Tag("image")]
    | Annotated[FilePart, Tag("file")]
    | Annotated[UnknownPart, Tag("unknown")],
    Discriminator(_part_tag),
]
Content = str | list[Part]
# What a request may send as content: a string, or parts as models or as plain dicts.
ContentIn = str | Sequence[Part | Mapping[str, Any]]


# --- threads and messages -----------------------------------------------------------------------------------


class Usage(_Object):
    input_tokens: int
    output_tokens: int


class Feedback(_Object):
    rating: Literal["up", "down"] | str
    comment: str | None = None
    updated_at: str


class Thread(_Object):
    id: str
    object: str = "thread"
    title: str | None
    metadata: dict[str, Any]
    status: Literal["active", "archived"] | str
    created_at: str
    updated_at: str
    archived_at: str | None
    message_count: int
    last_message_at: str | None
    version: int
    current_message_id: str | None = None


class Message(_Object):
    id: str
    object: str = "message"
    thread_id: str
    seq: int
    role: Literal["user", "assistant", "system", "tool"] | str
    content: Content
    metadata: dict[str, Any]
    created_at: str
    parent_id: str | None = None
    depth: int = 1
    sibling_index: int = 1
    sibling_count: int = 1
    status: Literal["completed", "in_progress", "incomplete"] | str = "completed"
    finish_reason: str | None = None
    model: str | None = None
    usage: Usage | None = None
    feedback: Feedback | None = None

    @property
    def text(self) -> str:
        """The searchable text: string content, or the `text` parts joined with newlines (as the server does)."""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content if isinstance(part, TextPart))


class Page(_Object, Generic[T]):
    """One page of a list: follow `next_cursor` while `has_more` (or use the `list_all` iterators)."""

    object: str = "list"
    data: list[T]
    next_cursor: str | None = None
    has_more: bool = False


class SearchMatch(_Object):
    message_id: str | None  # None: the title matched
    snippet: str  # HTML-safe: matched words in <mark>, everything else escaped


class SearchResult(_Object):
    object: str = "search_result"
    thread: Thread
    score: float
    matches: list[SearchMatch]


class DeltaResult(_Object):
    object: str = "message.delta"
    message_id: str
    offset: int
    length: int


class AutoRename(_Object):
    """The renamed thread and where its title came from (`X-Title-Source`: `llm` or `fallback`)."""

    thread: Thread
    title_source: str | None


class EventsSession(_Object):
    """The `threadstore_events` cookie `POST /api/events/session` set (for a browser's EventSource)."""

    cookie: str
    max_age: int | None


# --- requests -----------------------------------------------------------------------------------------------


class NewMessage(BaseModel):
    """An initial message of `threads.create` (they form a chain). Fields left unset are not sent."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant", "system", "tool"] = "user"
    content: Content
    metadata: dict[str, Any] | None = None
    status: Literal["completed", "in_progress"] | None = None
    model: str | None = None
    usage: Usage | None = None
    finish_reason: str | None = None

    def wire(self) -> dict[str, Any]:
        body: dict[str, Any] = self.model_dump(mode="json", exclude_none=True)
        body["role"] = self.role  # explicit: the same request whether or not the caller set it
        return body


# --- events -------------------------------------------------------------------------------------------------


class ThreadDeleted(_Object):
    id: str


class MessageDeleted(_Object):
    id: str
    thread_id: str
    deleted_count: int


class MessageDelta(_Object):
    message_id: str
    thread_id: str
    offset: int
    text: str


class _Event(_Object):
    id: int


class ThreadCreatedEvent(_Event):
    type: Literal["thread.created"] = "thread.created"
    data: Thread


class ThreadUpdatedEvent(_Event):
    type: Literal["thread.updated"] = "thread.updated"
    data: Thread


class ThreadDeletedEvent(_Event):
    type: Literal["thread.deleted"] = "thread.deleted"
    data: ThreadDeleted


class MessageCreatedEvent(_Event):
    type: Literal["message.created"] = "message.created"
    data: Message


class MessageUpdatedEvent(_Event):
    type: Literal["message.updated"] = "message.updated"
    data: Message


class MessageDeletedEvent(_Event):
    type: Literal["message.deleted"] = "message.deleted"
    data: MessageDeleted


class MessageDeltaEvent(_Event):
    type: Literal["message.delta"] = "message.delta"
    data: MessageDelta


class UnknownEvent(_Event):
    """An event type this client does not know yet: its data as parsed JSON."""

    type: str
    data: Any = Field(default=None)


Event = (
    ThreadCreatedEvent
    | ThreadUpdatedEvent
    | ThreadDeletedEvent
    | MessageCreatedEvent
    | MessageUpdatedEvent
    | MessageDeletedEvent
    | MessageDeltaEvent
    | UnknownEvent
)

EVENT_TYPES: dict[str, type[_Event]] = {
    "thread.created": ThreadCreatedEvent,
    "thread.updated": ThreadUpdatedEvent,
    "thread.deleted": ThreadDeletedEvent,
    "message.created": MessageCreatedEvent,
    "message.updated": MessageUpdatedEvent,
    "message.deleted": MessageDeletedEvent,
    "message.delta": MessageDeltaEvent,
}
