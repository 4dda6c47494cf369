"""The streamed-reply checker the sweeps, races and crash audit rely on is only evidence if it can fail: each
broken invariant of a small, valid set of rows is reported."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from scripts.torture.replies import reply_violations

from threadstore.db import event_body

Rows = tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]
NOW = datetime(2026, 12, 4, tzinfo=UTC)


def _event(event_id: int, kind: str, message_id: str | None, data: dict[str, Any]) -> dict[str, Any]:
    return {"id": event_id, "type": kind, "message_id": message_id, "body": event_body.raw(orjson.dumps(data).decode())}


def rows() -> Rows:
    """The reply "r": unfinished, "He" + deltas "ll" and "o" (a snapshot event after the first delta); "done": a
    finished reply whose deltas were folded into its content."""
    messages: list[dict[str, Any]] = [
        {"id": "r", "status": "in_progress", "content": "He", "parts": None, "content_length": 5, "active_at": NOW},
        {"id": "done", "status": "completed", "content": "Bye", "parts": None, "content_length": 3, "active_at": None},
    ]
    deltas = [{"message_id": "r", "start": 2, "text": "ll"}, {"message_id": "r", "start": 4, "text": "o"}]
    events = [
        _event(1, "message.delta", "r", {"offset": 2, "text": "ll"}),
        _event(2, "message.updated", "r", {"content": "Hell", "status": "in_progress"}),
        _event(3, "message.delta", "r", {"offset": 4, "text": "o"}),
        _event(4, "message.delta", "done", {"offset": 0, "text": "Bye"}),
    ]
    return messages, deltas, events


def test_valid_replies_have_no_violation() -> None:
    assert reply_violations(*rows()) == []


BREAKS: dict[str, tuple[Callable[[Rows], object], str]] = {
    "a gap between deltas": (lambda r: r[1][1].update(start=5), "a delta starts at 5"),
    "a lost delta row": (lambda r: r[1].pop(), "content_length 5 != 4"),
    "a length not moved": (lambda r: r[0][0].update(content_length=4), "content_length 4 != 5"),
    "no activity time": (lambda r: r[0][0].update(active_at=None), "no active_at"),
    "deltas kept after the end": (
        lambda r: r[1].append({"message_id": "done", "start": 3, "text": "!"}),
        "keeps 1 delta rows",
    ),
    "a finished length": (lambda r: r[0][1].update(content_length=7), "content_length 7 != 3"),
    "activity after the end": (lambda r: r[0][1].update(active_at=NOW), "active_at is set"),
    "a delta without its event": (lambda r: r[2].pop(2), "its events rebuild 4 characters"),
    "an event without its delta": (
        lambda r: r[2].append(_event(5, "message.delta", "r", {"offset": 5, "text": "!"})),
        "its events rebuild 6 characters",
    ),
    "an event at the wrong offset": (
        lambda r: r[2].__setitem__(2, _event(3, "message.delta", "r", {"offset": 3, "text": "o"})),
        "a delta at 3",
    ),
}


@pytest.mark.parametrize("broken", list(BREAKS))
def test_each_broken_invariant_is_reported(broken: str) -> None:
    found_rows = rows()
    breaking, expected = BREAKS[broken]
    breaking(found_rows)
    found = "\n".join(reply_violations(*found_rows))
    assert expected in found, found
