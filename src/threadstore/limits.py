"""The configurable size limits of API.md, checked in one place so every endpoint applies them alike."""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from pydantic import AfterValidator

from threadstore import disguise
from threadstore.config import Settings
from threadstore.errors import Unprocessable

Loc = tuple[str | int, ...]


def _reject(loc: Loc, msg: str) -> Unprocessable:
    return Unprocessable("The request is not valid.", errors=[{"loc": list(loc), "msg": msg}])


@dataclass(frozen=True)
class Limits:
    title_chars: int
    metadata_keys: int
    metadata_key_chars: int
    metadata_bytes: int
    content_chars: int
    initial_messages: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            title_chars=settings.max_title_chars,
            metadata_keys=settings.max_metadata_keys,
            metadata_key_chars=settings.max_metadata_key_chars,
            metadata_bytes=settings.max_metadata_bytes,
            content_chars=settings.max_content_chars,
            initial_messages=settings.max_initial_messages,
        )

    def title(self, value: str, loc: Loc) -> str:
        trimmed = value.strip()
        if not 1 <= len(trimmed) <= self.title_chars:
            raise _reject(loc, f"title must be 1 to {self.title_chars} characters after trimming")
        if any(unicodedata.category(ch) == "Cc" for ch in trimmed):
            raise _reject(loc, "title must not contain control characters")
        if not is_utf8(trimmed):
            raise _reject(loc, SURROGATE_MESSAGE)
        if (character := disguise.find(trimmed)) is not None:
            raise _reject(loc, disguise_message("title", character))
        return trimmed

    def metadata(self, value: dict[str, Any], loc: Loc, *, kept: Collection[str] = ()) -> dict[str, Any]:
        """`kept`: keys already stored, which the characters rule does not judge again (it is newer than
        some of them, and a merge patch that leaves them alone must still apply)."""
        if len(value) > self.metadata_keys:
            raise _reject(loc, f"metadata may have at most {self.metadata_keys} keys")
        for key in value:
            if not 1 <= len(key) <= self.metadata_key_chars:
                raise _reject((*loc, key), f"metadata keys must be 1 to {self.metadata_key_chars} characters")
            if key not in kept and (character := disguise.find(key)) is not None:
                raise _reject((*loc, key), disguise_message("metadata keys", character))
        try:
            size = len(orjson.dumps(value))
        except orjson.JSONEncodeError:
            raise _reject(loc, "metadata is too deeply nested or holds a number out of range") from None
        if size > self.metadata_bytes:
            raise _reject(loc, f"metadata may be at most {self.metadata_bytes} bytes serialized")
        return value

    def content(self, value: str, loc: Loc) -> str:
        if not 1 <= len(value) <= self.content_chars:
            raise _reject(loc, f"content must be 1 to {self.content_chars} characters")
        if "\x00" in value:
            raise _reject(loc, NUL_MESSAGE)
        if not is_utf8(value):
            raise _reject(loc, SURROGATE_MESSAGE)
        return value

    def initial_message_count(self, count: int, loc: Loc) -> None:
        if count > self.initial_messages:
            raise _reject(loc, f"at most {self.initial_messages} initial messages")


def disguise_message(what: str, character: str) -> str:
    return (
        f"{what} must not contain bidirectional controls or invisible format characters"
        f" ({disguise.describe(character)} found)"
    )


NUL_MESSAGE = "text must not contain the NUL character (U+0000)"
SURROGATE_MESSAGE = "text must not contain unpaired UTF-16 surrogates (\\ud800-\\udfff escapes)"


def is_utf8(text: str) -> bool:
    """False for a string holding a lone surrogate (JSON allows the escape; no database can store it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Deeper than any real metadata, and well inside what the JSON serializers on the way to the database accept.
MAX_JSON_DEPTH = 64
_INT_RANGE = (-(2**63), 2**64 - 1)  # what orjson (the database's JSON serializer) can write


def plain_json(document: Any) -> Any:
    """A request's JSON value, if every backend can store it exactly as sent; else ValueError (422).

    PostgreSQL text and jsonb cannot hold NUL; NaN and Infinity (which Python's JSON parser accepts) are not
    JSON and would be stored as null; integers beyond 64 bits and very deep nesting cannot be serialized.
    Iterative, so a hostile depth costs no recursion.
    """
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError(NUL_MESSAGE)
            if not is_utf8(item):
                raise ValueError(SURROGATE_MESSAGE)
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not _INT_RANGE[0] <= item <= _INT_RANGE[1]:
                raise ValueError("integers must fit in 64 bits")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError("numbers must be finite (NaN and Infinity are not JSON)")
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise ValueError(f"JSON may be nested at most {MAX_JSON_DEPTH} levels deep")
            children = [*item, *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return document


JsonObject = Annotated[dict[str, Any], AfterValidator(plain_json)]
