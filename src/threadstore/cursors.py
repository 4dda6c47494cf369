"""Opaque keyset cursors: base64url JSON of the last row's sort key. Malformed cursors are client errors."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime
from typing import Any

import orjson

from threadstore.errors import Unprocessable

# What `encode` makes (unpadded base64url); empty is no cursor.
CURSOR_PATTERN = "^[A-Za-z0-9_-]*$"
_ALPHABET = re.compile(CURSOR_PATTERN)


def encode(*parts: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(parts)).decode().rstrip("=")


def _decode(cursor: str) -> list[Any]:
    # Checked here, not left to the decoder, which skips characters outside the alphabet.
    if not _ALPHABET.fullmatch(cursor):
        raise _invalid()
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError, orjson.JSONDecodeError):
        raise _invalid() from None
    if not isinstance(value, list):
        raise _invalid()
    return value


def _invalid() -> Unprocessable:
    return Unprocessable("The cursor is not valid.", errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor"}])


def decode_thread_cursor(cursor: str) -> tuple[datetime, str]:
    value = _decode(cursor)
    if len(value) != 2 or not isinstance(value[0], str) or not isinstance(value[1], str):
        raise _invalid()
    if "\x00" in value[1]:
        raise _invalid()
    try:
        ts = datetime.fromisoformat(value[0])
        # Normalised here: a timestamp near year 1 or 9999 can overflow when moved to UTC.
        ts = (ts if ts.tzinfo else ts.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        raise _invalid() from None
    return ts, value[1]


def encode_thread_cursor(updated_at: datetime, thread_id: str) -> str:
    return encode(updated_at.astimezone(UTC).isoformat(), thread_id)


def decode_seq_cursor(cursor: str) -> int:
    value = _decode(cursor)
    if len(value) != 1 or not isinstance(value[0], int) or isinstance(value[0], bool):
        raise _invalid()
    if not 0 <= value[0] <= 2**31 - 1:
        raise _invalid()
    return int(value[0])


# A message list's cursor, by selector: its tag, then what it holds ("branch": a branch id, a bigint; "n": a
# depth, seq or sibling_index, kept below the top so SQL's `+ 1` cannot overflow; "id": the message the selector
# named, so a cursor continues only the request that made it).
MESSAGE_CURSORS: dict[str, tuple[str, ...]] = {
    "path": ("branch", "n"),  # the active path, ascending: to the tip of its branch, after a depth
    "path-desc": ("branch", "n"),  # the active path, descending: above a branch, before a depth
    "leaf": ("id", "branch", "n", "n"),  # the path to a message, ascending: its branch and depth, after a depth
    "leaf-desc": ("id", "branch", "n"),
    "siblings": ("id", "n"),
    "all": ("n",),  # every message by seq
}
_TOPS = {"branch": 2**62, "n": 2**31 - 2}


def decode_message_cursor(cursor: str, expected: str, named: str | None = None) -> list[Any]:
    """The values of a message list's cursor of kind `expected` (MESSAGE_CURSORS), for a selector naming
    message `named`. A cursor of another kind, or of another message, is 422. `[seq]`, what version 1 gave out
    for a thread's messages (a line), continues the active path or `view=all` after that seq."""
    value = _decode(cursor)
    if len(value) == 1 and expected in ("path", "path-desc", "all"):
        seq = decode_seq_cursor(cursor)
        return [seq] if expected == "all" else [None, seq]  # a line's seq is a depth of the current path
    shape = MESSAGE_CURSORS[expected]
    if len(value) != len(shape) + 1 or value[0] != expected:
        raise _invalid()
    values = value[1:]
    for part, kind in zip(values, shape, strict=True):
        if kind == "id":
            if part != named:
                raise _invalid()
        elif not (isinstance(part, int) and not isinstance(part, bool) and 0 <= part <= _TOPS[kind]):
            raise _invalid()
    return [part for part, kind in zip(values, shape, strict=True) if kind != "id"]


def encode_message_cursor(kind: str, *values: Any) -> str:
    return encode(kind, *values)


def encode_search_cursor(score: float, updated_at: datetime, thread_id: str) -> str:
    # A float goes through JSON exactly (shortest repr), so the next page starts right after this row.
    return encode(score, updated_at.astimezone(UTC).isoformat(), thread_id)


def decode_search_cursor(cursor: str) -> tuple[float, datetime, str]:
    value = _decode(cursor)
    if len(value) != 3 or isinstance(value[0], bool) or not isinstance(value[0], int | float):
        raise _invalid()
    ts, thread_id = decode_thread_cursor(encode(value[1], value[2]))
    return float(value[0]), ts, thread_id
