"""Structured content (API.md, "Structured content"): a message's `content` is a string or an array of typed parts.

Each part type is a model that forbids unknown fields. The array is validated here part by part (`validate`)
rather than by pydantic's tagged union, whose errors name the union and the tag in `loc`
(`["body", "content", "list[…]", 3, "image", "url"]`): a client is told `["body", "content", 3, "url"]`.
What needs the settings — the content limit, counted by `characters` — is `Limits.content`'s, in the service.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Annotated, Any, Literal, cast

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from threadstore.limits import NO_NUL_PATTERN, NUL_MESSAGE, SURROGATE_MESSAGE, is_utf8

MAX_PARTS = 100
MAX_ID_CHARS = 128

# RFC 3986 schemes are case-insensitive. Only these can be fetched or inlined without a surprise: a
# `javascript:` url executes where it is rendered as a link, `file:` reads the viewer's own disk.
_SCHEME = "(?:[Hh][Tt][Tt][Pp][Ss]?://|[Dd][Aa][Tt][Aa]:)"
_URL_START = re.compile(_SCHEME)
URL_PATTERN = f"^{_SCHEME}[^\\u0000]*$"
URL_MESSAGE = "url must start with https://, http:// or data:"
TOOL_MESSAGE = "a tool message carries tool_result parts only"


def _plain(value: str) -> str:
    # What every backend can store: PostgreSQL text and jsonb hold no NUL, and no database a lone surrogate.
    if "\x00" in value:
        raise PydanticCustomError("nul_character", NUL_MESSAGE)
    if not is_utf8(value):
        raise PydanticCustomError("unpaired_surrogate", SURROGATE_MESSAGE)
    return value


def _url(value: str) -> str:
    if _URL_START.match(value) is None:
        raise PydanticCustomError("url_scheme", URL_MESSAGE)
    return value


Text = Annotated[StrictStr, AfterValidator(_plain), Field(json_schema_extra={"pattern": NO_NUL_PATTERN})]
Identifier = Annotated[
    StrictStr,
    Field(min_length=1, max_length=MAX_ID_CHARS),
    AfterValidator(_plain),
    Field(json_schema_extra={"pattern": NO_NUL_PATTERN}),
]
Url = Annotated[
    StrictStr, AfterValidator(_plain), AfterValidator(_url), Field(json_schema_extra={"pattern": URL_PATTERN})
]


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: str

    def strings(self) -> Iterator[str]:
        """Every string value of the part but its type: what the content limit counts."""
        for name, value in self:
            if name != "type" and isinstance(value, str):
                yield value

    def characters(self) -> int:
        return sum(len(value) for value in self.strings())


class TextPart(_Part):
    type: Literal["text"]
    text: Text


class ReasoningPart(_Part):
    type: Literal["reasoning"]
    text: Text


class ToolCallPart(_Part):
    type: Literal["tool_call"]
    id: Identifier
    name: Identifier
    arguments: Text = Field(description="The arguments as the model produced them (JSON text); not parsed.")


class ToolResultPart(_Part):
    type: Literal["tool_result"]
    # Names a tool_call's id, so it has that id's bounds.
    tool_call_id: Identifier
    content: Text
    is_error: StrictBool = False


class ImagePart(_Part):
    """A reference: the image itself is not stored here."""

    type: Literal["image"]
    url: Url


class FilePart(_Part):
    """A reference: the file itself is not stored here."""

    type: Literal["file"]
    url: Url
    name: Text | None = None
    mime_type: Text | None = None


Part = Annotated[
    TextPart | ReasoningPart | ToolCallPart | ToolResultPart | ImagePart | FilePart, Field(discriminator="type")
]


# The returned form, for the document: every field present (`wire`).
class StoredToolResultPart(ToolResultPart):
    is_error: StrictBool


class StoredFilePart(FilePart):
    name: Text | None
    mime_type: Text | None


StoredPart = Annotated[
    TextPart | ReasoningPart | ToolCallPart | StoredToolResultPart | ImagePart | StoredFilePart,
    Field(discriminator="type"),
]
# The array as the OpenAPI document shows it; `validate` checks it.
Parts = Annotated[list[Part], Field(min_length=1, max_length=MAX_PARTS)]

_MODELS: dict[str, type[_Part]] = {
    "text": TextPart,
    "reasoning": ReasoningPart,
    "tool_call": ToolCallPart,
    "tool_result": ToolResultPart,
    "image": ImagePart,
    "file": FilePart,
}
_TYPES = ", ".join(_MODELS)


def _error(loc: tuple[str | int, ...], kind: str, message: str, value: Any) -> InitErrorDetails:
    return InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)


def validate(value: list[Any]) -> list[Part]:
    """The parts of an array given as content, or a ValidationError whose every `loc` starts with the index of
    the part it is about (none for the array's length)."""
    if not 1 <= len(value) <= MAX_PARTS:
        raise ValidationError.from_exception_data(
            "Parts", [_error((), "parts_count", f"content must hold 1 to {MAX_PARTS} parts", value)]
        )
    parts: list[Part] = []
    errors: list[InitErrorDetails] = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            errors.append(_error((index,), "part_type", "a part must be an object", item))
            continue
        model = _MODELS.get(item["type"]) if isinstance(item.get("type"), str) else None
        if model is None:
            message = f"type must be one of {_TYPES}" if "type" in item else "Field required"
            errors.append(_error((index, "type"), "part_type", message, item.get("type")))
            continue
        try:
            parts.append(cast(Part, model.model_validate(item)))
        except ValidationError as failed:
            # The message as pydantic worded it, under a custom type: pydantic's own types need their context.
            errors.extend(
                _error((index, *error["loc"]), error["type"], error["msg"], error["input"]) for error in failed.errors()
            )
    if errors:
        raise ValidationError.from_exception_data("Parts", errors)
    return parts


def check_role(role: str, parts: Sequence[Part]) -> None:
    """A `tool` message answers tool calls: it carries tool_result parts only (or a string). Any other part
    there would be a result no call can be matched with, or text no mapping back to a tool message can hold."""
    if role != "tool":
        return
    errors = [
        _error((index, "type"), "tool_message_part", TOOL_MESSAGE, part.type)
        for index, part in enumerate(parts)
        if not isinstance(part, ToolResultPart)
    ]
    if errors:
        raise ValidationError.from_exception_data("Parts", errors)


def text_of(parts: Sequence[Part]) -> str:
    """The searchable text of parts: the text parts' text, joined with a newline.

    What auto-rename and search read (API.md). Reasoning is the model's working, not the answer, and tool
    arguments and results are data. A newline, not "": text parts split around a tool call ("Let me check."
    … "It is sunny.") would otherwise run words together ("check.It"), and a title generator reads them as
    separate lines. "" when there is no text part."""
    return "\n".join(part.text for part in parts if isinstance(part, TextPart))


def characters(parts: Sequence[Part]) -> int:
    """What the content limit counts: every string value of every part but `type`, together (Python `len`)."""
    return sum(part.characters() for part in parts)


def wire(parts: Sequence[Part]) -> list[dict[str, Any]]:
    """The stored and returned form: every field of each part present, an absent optional one null (`is_error`
    false)."""
    return [part.model_dump() for part in parts]
