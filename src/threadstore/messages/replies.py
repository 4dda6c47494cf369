"""Rules of a message's life after its creation (API.md, "Streamed replies" and "Feedback"): deltas that grow an
unfinished reply, the PATCH that ends or amends it, feedback, and the end of replies left unfinished.

A delta is one statement whose offset check is its compare-and-set; a retry of an acknowledged delta finds its
text already stored and answers as the first time. Every other change locks the message's row in a
transaction, which orders it after every delta that committed before (each one updates that row): what a
closing PATCH folds into the content is exactly the deltas acknowledged before it. None of these writes moves
the thread (its version and updated_at stay)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from threadstore.db.failures import Stale
from threadstore.db.outbox import MESSAGE_DELTA, MESSAGE_UPDATED, Event, record
from threadstore.db.unit_of_work import Tx, one_write
from threadstore.errors import Conflict, Unprocessable, thread_not_found
from threadstore.limits import Limits, checked_text
from threadstore.merge_patch import merge_patch, same_json
from threadstore.messages import parts, repository
from threadstore.messages.parts import Part
from threadstore.messages.schemas import DeltaCreate, FeedbackPut, MessagePatch, message_json
from threadstore.messages.service import message_not_found, stored_content
from threadstore.search.index import indexed

# The stale sweep ends at most this many replies per unit of work.
STALE_BATCH = 100
_FINISHED = ("completed", "incomplete")


@one_write
async def append_delta(
    tx: Tx, user_id: str, thread_id: str, message_id: str, body: DeltaCreate, limits: Limits
) -> dict[str, Any]:
    text = checked_text(body.text, ("body", "text"))
    answer = {"object": "message.delta", "message_id": message_id, "offset": body.offset, "length": 0}
    data = {"message_id": message_id, "thread_id": thread_id, "offset": body.offset, "text": text}
    event = Event(user_id, thread_id, MESSAGE_DELTA, data, message_id=message_id)
    length = await repository.append_delta(
        tx, user_id, thread_id, message_id, body.offset, text, limits.content_chars, event
    )
    if length is not None:
        return answer | {"length": length}
    state = await repository.delta_state(tx, user_id, thread_id, message_id)
    if state is None:
        raise await _not_found(tx, user_id, thread_id)
    unfinished = state["status"] == "in_progress"
    end = body.offset + len(text)
    if not state["has_parts"] and end <= state["length"]:
        stored = await repository.stored_text(tx, message_id, body.offset, len(text), state["base"], unfinished)
        if stored == text:  # a retry of a delta that was stored: nothing changes, the same answer
            return answer | {"length": end}
    if state["thread_status"] == "archived":
        raise Conflict("The thread is archived; restore it before changing its messages.", reason="archived")
    if not unfinished or state["has_parts"]:
        raise Conflict("Deltas apply only to an in_progress message whose content is a string.", reason="state")
    if body.offset != state["length"]:
        raise Conflict(
            "The offset is not the stored length; resume at `length`.", reason="offset", length=state["length"]
        )
    limits.content_growth(end, ("body", "text"))
    raise Stale()  # it matched when looked at again: a change committed in between, so the unit runs again


async def patch(
    tx: Tx, user_id: str, thread_id: str, message_id: str, body: MessagePatch, limits: Limits
) -> dict[str, Any]:
    fields = body.model_fields_set
    for name in ("status", "content", "metadata"):
        if name in fields and getattr(body, name) is None:
            raise Unprocessable(f"{name} cannot be null.", errors=[{"loc": ["body", name], "msg": "must not be null"}])
    row, thread_status = await _locked(tx, user_id, thread_id, message_id)
    changes: dict[str, Any] = {}
    if body.status is not None and body.status != row["status"]:
        changes["status"] = body.status
    if body.content is not None:
        if isinstance(body.content, list) and row["role"] == "tool":
            _tool_result_parts_only(body.content)
        text, stored_parts = stored_content(limits.content(body.content, ("body", "content"), empty=True))
        if not same_json(row["parts"], stored_parts) or (stored_parts is None and text != row["content"]):
            changes |= {"content": text, "parts": stored_parts, "content_length": len(text)}
    if "finish_reason" in fields:
        _set(changes, row, "finish_reason", _text(body.finish_reason, ("body", "finish_reason")))
    if "model" in fields:
        _set(changes, row, "model", _text(body.model, ("body", "model")))
    if "usage" in fields:
        _set(changes, row, "input_tokens", body.usage.input_tokens if body.usage is not None else None)
        _set(changes, row, "output_tokens", body.usage.output_tokens if body.usage is not None else None)
    reply_changes = bool(changes)
    if body.metadata is not None:
        merged = merge_patch(row["metadata"], body.metadata)
        limits.metadata(merged, ("body", "metadata"), kept=row["metadata"].keys())
        if not same_json(merged, row["metadata"]):
            changes["metadata"] = merged
    if not changes:  # every value equals the stored one (a retried closing PATCH, say): nothing to do
        return message_json(row)
    _writable(thread_status)
    if reply_changes and row["status"] != "in_progress":
        raise Conflict(
            "A finished message's status, content, finish_reason, model and usage do not change; "
            "an edit is a new sibling.",
            reason="state",
        )
    if changes.get("status") == "in_progress":
        raise Conflict("A finished message cannot be reopened.", reason="state")
    return await _change(tx, user_id, row, changes)


async def put_feedback(tx: Tx, user_id: str, thread_id: str, message_id: str, body: FeedbackPut) -> dict[str, Any]:
    comment = _text(body.comment, ("body", "comment"))
    row, thread_status = await _locked(tx, user_id, thread_id, message_id)
    if row["feedback_rating"] == body.rating and row["feedback_comment"] == comment:
        return message_json(row)
    _writable(thread_status)
    changes = {"feedback_rating": body.rating, "feedback_comment": comment, "feedback_at": tx.now}
    return await _change(tx, user_id, row, changes, activity=False)


async def delete_feedback(tx: Tx, user_id: str, thread_id: str, message_id: str) -> None:
    row, thread_status = await _locked(tx, user_id, thread_id, message_id)
    if row["feedback_rating"] is None:
        return
    _writable(thread_status)
    changes = {"feedback_rating": None, "feedback_comment": None, "feedback_at": None}
    await _change(tx, user_id, row, changes, activity=False)


async def end_stale(tx: Tx, cutoff: datetime) -> int:
    """Ends, as `incomplete` with finish_reason `timeout`, up to STALE_BATCH unfinished replies that had no delta
    or PATCH since `cutoff` (on archived threads too: this is the server's, not a client's write). Their text so
    far stays. Returns how many."""
    stale = await repository.lock_stale(tx, cutoff, STALE_BATCH)
    for found in stale:
        row = await repository.get(tx, found["user_id"], found["thread_id"], found["id"])
        if row is not None:
            await _change(tx, found["user_id"], row, {"status": "incomplete", "finish_reason": "timeout"})
    return len(stale)


async def _locked(tx: Tx, user_id: str, thread_id: str, message_id: str) -> tuple[Any, str]:
    """The message, locked for a change, with its content as shown (deltas included); its thread's status."""
    thread_status = await repository.lock(tx, user_id, thread_id, message_id)
    row = None if thread_status is None else await repository.get(tx, user_id, thread_id, message_id)
    if thread_status is None or row is None:
        raise await _not_found(tx, user_id, thread_id)
    return row, thread_status


async def _change(tx: Tx, user_id: str, row: Any, changes: dict[str, Any], *, activity: bool = True) -> dict[str, Any]:
    """Applies `changes` to the locked message and records `message.updated` with the whole message. A reply
    that ends keeps its text: the deltas are folded into its content, once."""
    unfinished = row["status"] == "in_progress"
    ending = unfinished and changes.get("status") in _FINISHED
    if ending and "content" not in changes:
        changes |= {"content": row["content"], "content_length": len(row["content"])}
    if ending:
        # Indexed once, as it ends, so deltas stay cheap (API.md "Search").
        changes |= {"active_at": None, "search_terms": indexed(user_id, changes["content"])}
    elif unfinished and activity:
        changes["active_at"] = tx.now
    await repository.change(tx, row["id"], changes, drop_deltas=unfinished and "content" in changes)
    message = message_json(dict(row) | changes)
    finished = message["status"] in _FINISHED and isinstance(message["content"], str)
    # A finished message's text never changes: its event refers to it. Otherwise the event holds the text as it
    # is now (a later delta must not show up in it), and is erased with the message.
    if finished:
        event = Event(user_id, row["thread_id"], MESSAGE_UPDATED, message, content_of=row["id"])
    else:
        event = Event(user_id, row["thread_id"], MESSAGE_UPDATED, message, message_id=row["id"])
    await record(tx, event)
    return message


def _tool_result_parts_only(content: list[Part]) -> None:
    """A tool message's parts (the create checks this in its request model, where the role is known)."""
    errors = [
        {"loc": ["body", "content", index, "type"], "msg": parts.TOOL_MESSAGE}
        for index, part in enumerate(content)
        if part.type != "tool_result"
    ]
    if errors:
        raise Unprocessable("The request is not valid.", errors=errors)


def _set(changes: dict[str, Any], row: Any, name: str, value: Any) -> None:
    if value != row[name]:
        changes[name] = value


def _text(value: str | None, loc: tuple[str, ...]) -> str | None:
    return None if value is None else checked_text(value, loc)


def _writable(thread_status: str) -> None:
    if thread_status == "archived":
        raise Conflict("The thread is archived; restore it before changing its messages.", reason="archived")


async def _not_found(tx: Tx, user_id: str, thread_id: str) -> Exception:
    if await repository.thread_status(tx, user_id, thread_id) is None:
        return thread_not_found()
    return message_not_found()
