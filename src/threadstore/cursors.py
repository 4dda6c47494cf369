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


def decode_message_cursor(cursor: str) -> list[Any]:
    """A message list's cursor: `[seq]` (by seq; also what version 1 gave out for a thread's line), `["a",
    branch, leaf_depth, after_depth]` / `["d", branch, before_depth]` (a path, ascending / descending), or
    `["s", sibling_index]` (siblings). The kind is checked against the request's selector by the caller."""
    value = _decode(cursor)
    if len(value) == 1:
        return ["seq", decode_seq_cursor(cursor)]
    shapes = {"a": 3, "d": 2, "s": 1}
    if not value or value[0] not in shapes or len(value) != shapes[value[0]] + 1:
        raise _invalid()
    numbers = value[1:]
    # A branch id is a bigint; depths and indexes are integers, kept below the top so SQL's `+ 1` cannot overflow.
    limits = [2**62 if value[0] != "s" and i == 0 else 2**31 - 2 for i in range(len(numbers))]
    if not all(
        isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= top for n, top in zip(numbers, limits, strict=True)
    ):
        raise _invalid()
    return value


def invalid_cursor() -> Unprocessable:
    return _invalid()
