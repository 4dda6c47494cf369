"""Events and idempotent responses stored before the upgrade lack the v2 fields: how a v2 reader fills them.

    .venv/bin/python bench/branches/legacy_fill.py

Uses v1's own code (this tree's src/ is v1): a message and a thread as v1 answered them, their event bodies
as v1's outbox stores them (db/event_body.encode), and the stored response of a keyed append. The v2 reader
decodes them as today, sees that the object predates the fields, and fills them with the values they had
when the object was made — which for a v1 object are fixed by the v1 shape (a straight line):

  message: depth = seq; sibling_index = 1; sibling_count = 1 (a v1 message never had a sibling);
           parent_id = the thread's message seq - 1 (null for seq 1) — read from the row, which 0006 chained
           (one batched probe of (thread_id, seq) per page of events, or per replayed response);
  thread:  current_message_id = the thread's message seq = message_count (null when 0) — same probe;
           message_count keeps its v1 meaning (no v1 message was ever deleted).

Which objects predate the fields: v2 writes its event bodies under new format bytes (db/event_body.py: a
format, once written, is read forever), so the first byte says it without parsing; a stored response is
parsed on replay anyway (replays are rare), and one without "parent_id" / "current_message_id" is legacy.
The previous version keeps writing legacy events during a rolling upgrade: the same rule covers them.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

import orjson

from threadstore.db import event_body
from threadstore.messages.schemas import message_json
from threadstore.threads.schemas import thread_json

LEGACY_FORMATS = {event_body.RAW, event_body.DEFLATED_V1, event_body.DERIVED_V1}  # v2 adds new format bytes


def needs(obj: dict[str, Any]) -> tuple[str, int] | None:
    """The (thread_id, seq) whose message id completes a legacy object, or None when it needs no lookup."""
    if obj.get("object") == "message" and "parent_id" not in obj:
        return (obj["thread_id"], obj["seq"] - 1) if obj["seq"] > 1 else None
    if obj.get("object") == "thread" and "current_message_id" not in obj:
        return (obj["id"], obj["message_count"]) if obj["message_count"] else None
    return None


def fill(obj: dict[str, Any], ids: dict[tuple[str, int], str]) -> dict[str, Any]:
    """`ids`: (thread_id, seq) → message id, from one batched lookup of every `needs(...)` of a page."""
    if obj.get("object") == "message" and "parent_id" not in obj:
        key = needs(obj)
        return obj | {
            "parent_id": ids.get(key) if key else None,
            "depth": obj["seq"],
            "sibling_index": 1,
            "sibling_count": 1,
        }
    if obj.get("object") == "thread" and "current_message_id" not in obj:
        key = needs(obj)
        return obj | {"current_message_id": ids.get(key) if key else None}
    return obj


LOOKUP = "SELECT thread_id, seq, id FROM messages WHERE (thread_id, seq) IN (VALUES {})"


def main() -> None:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE messages (id text PRIMARY KEY, thread_id text, seq integer, UNIQUE (thread_id, seq))")
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    thread = {
        "id": "thr_AAAAAAAAAAAAAAAAAAAAAA",
        "title": None,
        "metadata": {},
        "status": "active",
        "created_at": now,
        "updated_at": now,
        "archived_at": None,
        "message_count": 2,
        "last_message_at": now,
        "version": 3,
    }
    first = {
        "id": "msg_BBBBBBBBBBBBBBBBBBBBBB",
        "thread_id": thread["id"],
        "seq": 1,
        "role": "user",
        "content": "Plan a trip to Lisbon",
        "metadata": {},
        "created_at": now,
    }
    second = first | {"id": "msg_CCCCCCCCCCCCCCCCCCCCCC", "seq": 2, "role": "assistant", "content": "Day one: Belém"}
    db.executemany(
        "INSERT INTO messages VALUES (?, ?, ?)", [(m["id"], m["thread_id"], m["seq"]) for m in (first, second)]
    )

    # What v1 stored: an event body of each kind (its outbox's compact form), and a keyed append's response.
    stored = [
        (
            "message.created event",
            event_body.encode({k: v for k, v in message_json(second).items() if k != "content"}, thread["id"], now),
            "Day one: Belém",
        ),
        ("thread.updated event", event_body.encode(thread_json(thread), thread["id"], now), None),
    ]
    response = orjson.dumps(message_json(second))

    objects = [
        (label, orjson.loads(event_body.decode(body, None, content, thread["id"], now)))
        for label, body, content in stored
    ]
    objects.append(("stored 201 of a keyed append", orjson.loads(response)))
    assert all(body[0] in LEGACY_FORMATS for _, body, _ in stored)
    keys = [k for _, o in objects if (k := needs(o))]
    rows = db.execute(LOOKUP.format(", ".join("(?, ?)" for _ in keys)), [x for k in keys for x in k]).fetchall()
    ids = {(t, s): i for t, s, i in rows}
    for label, obj in objects:
        filled = fill(obj, ids)
        added = {k: v for k, v in filled.items() if k not in obj}
        print(f"- {label}: v1 keys {sorted(obj)}\n  filled: {added}")
    assert fill(objects[0][1], ids)["parent_id"] == first["id"]
    assert fill(objects[1][1], ids)["current_message_id"] == second["id"]


if __name__ == "__main__":
    main()
