"""The configurable size limits of API.md, checked in one place so every endpoint applies them alike."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

import orjson

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
        return trimmed

    def metadata(self, value: dict[str, Any], loc: Loc) -> dict[str, Any]:
        if len(value) > self.metadata_keys:
            raise _reject(loc, f"metadata may have at most {self.metadata_keys} keys")
        for key in value:
            if not 1 <= len(key) <= self.metadata_key_chars:
                raise _reject((*loc, key), f"metadata keys must be 1 to {self.metadata_key_chars} characters")
        if len(orjson.dumps(value)) > self.metadata_bytes:
            raise _reject(loc, f"metadata may be at most {self.metadata_bytes} bytes serialized")
        return value

    def content(self, value: str, loc: Loc) -> str:
        if not 1 <= len(value) <= self.content_chars:
            raise _reject(loc, f"content must be 1 to {self.content_chars} characters")
        return value

    def initial_message_count(self, count: int, loc: Loc) -> None:
        if count > self.initial_messages:
            raise _reject(loc, f"at most {self.initial_messages} initial messages")
