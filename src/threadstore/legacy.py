"""Objects stored before version 2 (migration 0006): events kept for resumes and responses kept for
Idempotency-Key replays, written when a thread was a line. They lack the fields version 2 added, and are
answered with the values those fields had then, never without them (issue 16; docs/branches-design.md §5):

- a message: `depth` = `seq`, `sibling_index` 1, `sibling_count` 1, `parent_id` the message before it. Its row,
  which migration 0006 placed exactly so, says the first three where it still exists.
- a thread: `current_message_id` = its message with seq = `message_count` (null when 0): a line's last.
- a message stored before migration 0007 (version 1, or 2 before streamed replies): `status` "completed" and
  `finish_reason`, `model`, `usage`, `feedback` null — what every message was then.

Events and responses are kept for a day, so this goes once both windows have passed since the upgrade.
"""

from __future__ import annotations

from typing import Any

import orjson

MESSAGE_FIELDS = ("parent_id", "depth", "sibling_index", "sibling_count")


def message_members(parent_id: str | None, depth: int, sibling_index: int) -> str:
    """The missing members of a stored message, as JSON members text (no braces)."""
    return ",".join(
        f'"{key}":{orjson.dumps(value).decode()}'
        for key, value in zip(MESSAGE_FIELDS, (parent_id, depth, sibling_index, 1), strict=True)
    )


REPLY_MEMBERS = '"status":"completed","finish_reason":null,"model":null,"usage":null,"feedback":null'
# Present in every message version 2 stores since 0007: its absence tells an older one. (In a JSON text a
# string's quote is escaped, so content cannot hold this with its closing quote.)
REPLY_MARK = '"finish_reason"'


def thread_members(current_message_id: str | None) -> str:
    return f'"current_message_id":{orjson.dumps(current_message_id).decode()}'


def lacks_message_fields(data: Any) -> bool:
    return isinstance(data, dict) and data.get("object") == "message" and "depth" not in data


def lacks_reply_fields(data: Any) -> bool:
    return isinstance(data, dict) and data.get("object") == "message" and "finish_reason" not in data


def lacks_thread_fields(data: Any) -> bool:
    return isinstance(data, dict) and data.get("object") == "thread" and "current_message_id" not in data
