"""The compact form of an event's object: what the outbox stores, and how a reader gets the exact JSON back.

An event must deliver its object as the API returned it at that moment, so the object is stored with the
event — but the outbox is written with every change, so the form is kept small:
- the object's JSON is deflated against a preset dictionary of the API's own keys and constant values
  (a thread's JSON shrinks from ~290 to ~80 bytes, where plain deflate reaches ~190);
- `member`: the one `"key":value` that only the write's own statement knows (a seq it hands out, metadata as
  JSONB normalized it) is kept apart, as the database printed it, and joined on reading;
- keys whose value the event row already holds (the thread's id, the event's own time) are left out and put
  back on reading: a thread id is 27 bytes a copy, a timestamp ~10 bytes deflated;
- `content`: a finished message's content never changes (API v2: an edit is a new sibling), so its event
  keeps only the message id and a reader joins the content from the message row. A permanent delete erases
  the events of what it deletes (events/service.py), so no event outlives the content it points to.

The first byte of a body says its format. A format, once written, is read forever: change the dictionary
only under a new format byte.
"""

from __future__ import annotations

import zlib
from datetime import datetime
from typing import Any

import orjson

from threadstore.timestamps import rfc3339

RAW = 0  # the JSON text, UTF-8 (events stored before this form existed)
DEFLATED_V1 = 1  # raw deflate with DICTIONARY_V1
DERIVED_V1 = 2  # byte 1: which DERIVED keys were left out; then DEFLATED_V1 of the rest

# Keys an object may share with its event row, in bit order, and which of the row's values each one equals:
# a thread's "id" and a message's "thread_id" are the event's thread; the timestamps its time (a write's
# event is stamped with the write's own `now`). Append only: a bit, once written, is read forever.
DERIVED: tuple[tuple[str, str], ...] = (
    ("id", "thread"),
    ("thread_id", "thread"),
    ("created_at", "time"),
    ("updated_at", "time"),
    ("last_message_at", "time"),
)

_SMALL = 1024  # bodies up to this size deflate with a 1 KiB window: a tenth of the CPU, the same size
DICTIONARY_V1 = orjson.dumps(
    [
        {"id": "msg_", "object": "message", "thread_id": "thr_", "role": "assistant", "metadata": {}},
        {"role": "user", "created_at": "2026-12-03T00:00:00.000Z"},
        {"id": "thr_", "object": "thread", "title": None, "metadata": {}, "status": "active"},
        {"created_at": "2026-12-03T00:00:00.000Z", "updated_at": "2026-12-03T00:00:00.000Z"},
        {"archived_at": None, "message_count": 0, "last_message_at": None, "version": 1, "status": "archived"},
    ]
)


def encode(data: dict[str, Any], thread_id: str | None = None, at: datetime | None = None) -> bytes:
    """The stored body of `data` (a JSON object), for an event row about `thread_id` stamped `at`."""
    row = {"thread": thread_id, "time": rfc3339(at) if at is not None else None}
    derived = 0
    for bit, (key, source) in enumerate(DERIVED):
        if row[source] is not None and data.get(key) == row[source]:
            derived |= 1 << bit
    if derived:
        data = {key: value for key, value in data.items() if not _left_out(key, derived)}
    text = orjson.dumps(data)
    window = -10 if len(text) <= _SMALL else -15
    deflate = zlib.compressobj(6, zlib.DEFLATED, window, 2, zlib.Z_DEFAULT_STRATEGY, DICTIONARY_V1)
    head = bytes((DERIVED_V1, derived)) if derived else bytes((DEFLATED_V1,))
    return head + deflate.compress(text) + deflate.flush()


def _left_out(key: str, derived: int) -> bool:
    return any(derived & (1 << bit) and key == name for bit, (name, _) in enumerate(DERIVED))


def stored(body: bytes) -> bytes:
    """The JSON object as stored, without what the row supplies (diagnostics and tests)."""
    if body[0] == RAW:
        return bytes(body[1:])
    start = {DEFLATED_V1: 1, DERIVED_V1: 2}.get(body[0])
    if start is None:
        raise ValueError(f"unknown event body format {body[0]}")
    inflate = zlib.decompressobj(-15, DICTIONARY_V1)
    return inflate.decompress(body[start:]) + inflate.flush()


def decode(
    body: bytes,
    member: str | None = None,
    content: str | None = None,
    thread_id: str | None = None,
    at: datetime | None = None,
) -> str:
    """The event's JSON text, one line: the stored object, then the keys taken from the event row (its
    `thread_id` and time `at`), then `member`, then `"content"` (a JSON string)."""
    return json_bytes(body, member, content, thread_id, at).decode()


def json_bytes(
    body: bytes,
    member: str | None = None,
    content: str | None = None,
    thread_id: str | None = None,
    at: datetime | None = None,
) -> bytes:
    """`decode`'s JSON text as UTF-8, made with one copy of the content (what a stream sends)."""
    text = stored(body)
    extra: list[bytes] = []
    if body[0] == DERIVED_V1:
        if thread_id is None or at is None:
            raise ValueError("this event body needs its row's thread_id and time to be read")
        row = {"thread": orjson.dumps(thread_id), "time": orjson.dumps(rfc3339(at))}
        extra += [
            orjson.dumps(key) + b":" + row[source] for bit, (key, source) in enumerate(DERIVED) if body[1] & (1 << bit)
        ]
    if member is not None:
        extra.append(member.encode())
    if not extra and content is None:
        return text
    parts = [text[:-1]]
    after_member = len(text) > 2  # the stored object has members: the next one follows a comma
    for member_text in extra:
        parts += (b"," if after_member else b"", member_text)
        after_member = True
    if content is not None:
        parts += (b"," if after_member else b"", b'"content":', orjson.dumps(content))
    parts.append(b"}")
    return b"".join(parts)


def raw(text: str) -> bytes:
    """A body that holds JSON text as it is (what a migration makes of events stored as text)."""
    return bytes((RAW,)) + text.encode()
