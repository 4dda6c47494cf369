"""The invariants of streamed replies (API.md, "Streamed replies"; docs/h17 design), checked on stored rows.

Shared, like tree.py, by the safety sweeps (after every interrupted or failed request), the race families and
the crash audit: whatever was cut short, a message's row, its delta rows and its `message.delta` events must
tell one story.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from threadstore.db import event_body

Row = Mapping[str, Any]

MESSAGE_COLUMNS = ("id", "status", "content", "parts", "content_length", "active_at")
DELTA_COLUMNS = ("message_id", "start", "text")
EVENT_COLUMNS = ("id", "type", "message_id", "body")


def reply_violations(messages: Iterable[Row], deltas: Iterable[Row], events: Iterable[Row] | None = None) -> list[str]:
    """Every departure, among `messages` (given all their delta rows and, optionally, all their events):

    - an unfinished reply (in_progress): its deltas follow its text column without gap or overlap (each starts
      where the text so far ends), `content_length` is that total, `active_at` is set, and a reply of parts
      has no delta; its events rebuild it: the text of its last `message.updated` (else its text column), then
      its later `message.delta` events in id order, each at the length so far, give exactly its content;
    - a finished message keeps no delta row (they were folded into its content once), has no `active_at`, and
      its `content_length` is null (a row older than 0007) or the length of its string content.
    """
    by_message: dict[str, list[Row]] = defaultdict(list)
    for d in deltas:
        by_message[d["message_id"]].append(d)
    events_of: dict[str, list[Row]] | None = None
    if events is not None:
        events_of = defaultdict(list)
        for e in sorted(events, key=lambda e: e["id"]):
            if e["message_id"] is not None:
                events_of[e["message_id"]].append(e)
    found: list[str] = []
    for m in messages:
        stored = sorted(by_message.get(m["id"], []), key=lambda d: d["start"])
        where = f"message {m['id']} ({m['status']})"
        if m["status"] != "in_progress":
            if stored:
                found.append(f"{where}: keeps {len(stored)} delta rows")
            if m["active_at"] is not None:
                found.append(f"{where}: active_at is set")
            if m["parts"] is None and m["content_length"] not in (None, len(m["content"])):
                found.append(f"{where}: content_length {m['content_length']} != {len(m['content'])}")
            continue
        if m["active_at"] is None:
            found.append(f"{where}: no active_at")
        if m["parts"] is not None:
            if stored:
                found.append(f"{where}: parts, yet {len(stored)} delta rows")
            continue
        position = len(m["content"])
        for d in stored:
            if d["start"] != position:
                found.append(f"{where}: a delta starts at {d['start']}, the text before it ends at {position}")
            position = d["start"] + len(d["text"])
        if m["content_length"] != position:
            found.append(f"{where}: content_length {m['content_length']} != {position} stored")
        if events_of is not None:
            text = "".join([m["content"], *(d["text"] for d in stored)])
            found += [f"{where}: {v}" for v in _replayed(m["content"], events_of.get(m["id"], []), text)]
    return found


def _replayed(column: str, events: list[Row], content: str) -> list[str]:
    """What is wrong with rebuilding `content` from the last snapshot among `events` and the deltas after it."""
    text, bad = column, []
    for e in events:
        data = orjson.loads(event_body.stored(bytes(e["body"])))
        if e["type"] == "message.updated":
            text = data["content"]
        elif e["type"] == "message.delta":
            if data["offset"] != len(text):
                bad.append(f"event {e['id']}: a delta at {data['offset']}, the text so far is {len(text)} long")
            text += data["text"]
    if text != content:
        bad.append(f"its events rebuild {len(text)} characters, not its content of {len(content)}")
    return bad
