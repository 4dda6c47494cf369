"""Message request bodies and the wire form of a message."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from threadstore.ids import id_pattern
from threadstore.limits import NO_NUL_PATTERN, Content, Metadata, MetadataPatch
from threadstore.messages import parts
from threadstore.messages.parts import Part, Parts, StoredPart
from threadstore.search.index import folded
from threadstore.timestamps import Timestamp, rfc3339

Role = Literal["user", "assistant", "system", "tool"]
Status = Literal["completed", "in_progress", "incomplete"]

MessageId = Annotated[str, Field(pattern=id_pattern("msg"))]
# No NUL (PostgreSQL text cannot hold it); an unpaired surrogate is the service's 422 (limits.checked_text).
FinishReason = Annotated[str, Field(max_length=64, pattern=NO_NUL_PATTERN)]
ModelName = Annotated[str, Field(max_length=128, pattern=NO_NUL_PATTERN)]
TokenCount = Annotated[int, Field(ge=0, le=2**31 - 1)]


class Usage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_tokens: TokenCount
    output_tokens: TokenCount


def _content(value: Any) -> str | list[Part]:
    # A string is judged by Limits.content in the service (its limit is a setting), parts here by their shape.
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return parts.validate(value)
    raise PydanticCustomError("content_type", "content must be a string or an array of parts")


StructuredContent = Annotated[
    str | list[Part],
    PlainValidator(_content, json_schema_input_type=Content | Parts),
    Field(
        description='A string, or an array of parts (API.md, "Structured content"). The content limit counts '
        "every string value of every part but `type`, together; a `tool` message carries `tool_result` parts "
        "only. Either is 422."
    ),
]


class MessageContent(BaseModel):
    """A message as a new thread's initial messages give it (they form a chain: no parent_id). An
    `in_progress` message is a reply still being generated: deltas append to it until a PATCH ends it."""

    model_config = ConfigDict(extra="forbid")

    role: Role = "user"
    content: StructuredContent
    metadata: Metadata = Field(default_factory=dict)
    status: Literal["completed", "in_progress"] = "completed"
    finish_reason: FinishReason | None = None
    model: ModelName | None = None
    usage: Usage | None = None

    @field_validator("content")
    @classmethod
    def _parts_fit_the_role(cls, content: str | list[Part], info: ValidationInfo) -> str | list[Part]:
        # `role` is declared first, so it is validated (and present, unless it failed) by now.
        if isinstance(content, list):
            parts.check_role(info.data.get("role", "user"), content)
        return content

    # Folded as the request is parsed, not in the unit of work that stores the message (search/index.py).
    _terms: tuple[str, ...] | None = PrivateAttr(default=None)

    def model_post_init(self, context: Any) -> None:
        if self.status != "in_progress":
            self._terms = self.terms

    @property
    def terms(self) -> tuple[str, ...]:
        """The search terms of the content's text (its text parts' text for parts)."""
        if self._terms is None:
            self._terms = folded(self.content if isinstance(self.content, str) else parts.text_of(self.content))
        return self._terms


class MessageCreate(MessageContent):
    """`parent_id` absent: after the thread's current message; an id: a child of that message; null: a root."""

    # Any string: one that names no message of the thread is the service's 422, with the same message whatever
    # it names (another user's message included), so a pattern here would only add a second wording.
    parent_id: Annotated[str, Field(max_length=64)] | None = None

    @property
    def follows_current(self) -> bool:
        return "parent_id" not in self.model_fields_set

    @model_serializer(mode="wrap")
    def _absent_is_not_null(self, dump: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # Absent and null parent_id are different requests (after the current message / a new root), so an
        # Idempotency-Key's fingerprint, made from this dump, must tell them apart.
        data: dict[str, Any] = dump(self)
        if self.follows_current:
            data.pop("parent_id", None)
        return data


class MessagePatch(BaseModel):
    """Only the fields named change. `status`, `content`, `finish_reason`, `model` and `usage` only while the
    message is in_progress (or to the values it has); `metadata` is a merge patch, in any status."""

    # A null status, content or metadata is the service's 422; SkipJsonSchema keeps null out of the document.
    model_config = ConfigDict(extra="forbid")

    status: Literal["completed", "incomplete", "in_progress"] | SkipJsonSchema[None] = None
    content: StructuredContent | SkipJsonSchema[None] = None
    finish_reason: FinishReason | None = None
    model: ModelName | None = None
    usage: Usage | None = None
    metadata: MetadataPatch | SkipJsonSchema[None] = None


class DeltaCreate(BaseModel):
    """`text` appended at `offset`: the length, in characters, the client believes is stored."""

    model_config = ConfigDict(extra="forbid")

    offset: Annotated[int, Field(ge=0, le=2**31 - 1)]
    text: Annotated[str, Field(min_length=1, max_length=65_536, pattern=NO_NUL_PATTERN)]


class DeltaOut(BaseModel):
    object: Literal["message.delta"]
    message_id: MessageId
    offset: int
    length: int


class FeedbackPut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: Literal["up", "down"]
    comment: Annotated[str, Field(max_length=4096, pattern=NO_NUL_PATTERN)] | None = None


class FeedbackOut(BaseModel):
    rating: Literal["up", "down"]
    comment: str | None
    updated_at: Timestamp


# The response shape, for the document: handlers serialize plain dicts for speed.
class MessageOut(BaseModel):
    id: MessageId
    object: Literal["message"]
    thread_id: Annotated[str, Field(pattern=id_pattern("thr"))]
    seq: Annotated[int, Field(ge=1)]
    role: Role
    content: str | list[StoredPart]
    metadata: dict[str, Any]
    created_at: Timestamp
    parent_id: MessageId | None
    depth: Annotated[int, Field(ge=1)]
    sibling_index: Annotated[int, Field(ge=1)]
    sibling_count: Annotated[int, Field(ge=1)]
    status: Status
    finish_reason: str | None
    model: str | None
    usage: Usage | None
    feedback: FeedbackOut | None


class MessageList(BaseModel):
    object: Literal["list"]
    data: list[MessageOut]
    next_cursor: str | None
    has_more: bool


def message_json(row: Any) -> dict[str, Any]:
    """The API's message from a row of MESSAGE_COLUMNS (or a new message's row): content in the form it was
    stored, usage and feedback as objects."""
    parts = row["parts"]
    rating = row["feedback_rating"]
    return {
        "id": row["id"],
        "object": "message",
        "thread_id": row["thread_id"],
        "seq": row["seq"],
        "role": row["role"],
        "content": row["content"] if parts is None else parts,
        "metadata": row["metadata"],
        "created_at": rfc3339(row["created_at"]),
        "parent_id": row["parent_id"],
        "depth": row["depth"],
        "sibling_index": row["sibling_index"],
        "sibling_count": row["sibling_count"],
        "status": row["status"],
        "finish_reason": row["finish_reason"],
        "model": row["model"],
        "usage": None
        if row["input_tokens"] is None
        else {"input_tokens": row["input_tokens"], "output_tokens": row["output_tokens"]},
        "feedback": None
        if rating is None
        else {"rating": rating, "comment": row["feedback_comment"], "updated_at": rfc3339(row["feedback_at"])},
    }
