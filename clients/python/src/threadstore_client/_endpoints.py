"""Every endpoint of the contract as a `Call` builder: the path, the body, the answer's type and how safe a
retry is. Both clients expose these as methods (`_sync.py`, `_async.py`), so each is written once."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal
from urllib.parse import quote

import httpx

from threadstore_client._core import NOT_GIVEN, Call, Confirm, NotGiven, given, model, nothing, query
from threadstore_client._retry import Safety
from threadstore_client._streaming import Reply
from threadstore_client.models import (
    AutoRename,
    ContentIn,
    DeltaResult,
    EventsSession,
    Message,
    NewMessage,
    Page,
    SearchResult,
    Thread,
    Usage,
)

Status = Literal["active", "archived", "all"]
Order = Literal["asc", "desc"]


def _seg(value: str) -> str:
    return quote(value, safe="")


def _thread(thread_id: str) -> str:
    return f"/api/threads/{_seg(thread_id)}"


def _message(thread_id: str, message_id: str) -> str:
    return f"{_thread(thread_id)}/messages/{_seg(message_id)}"


def _key(idempotency_key: str | None) -> dict[str, str]:
    """One key per call, made here (once) and sent on each of its attempts; the caller's own wins."""
    return {"Idempotency-Key": idempotency_key or f"tsc-{uuid.uuid4()}"}


def _metadata_filters(metadata: Mapping[str, str] | None) -> list[tuple[str, str]]:
    return [(f"metadata.{key}", value) for key, value in (metadata or {}).items()]


def _if_match(version: int | None) -> dict[str, str]:
    return {} if version is None else {"If-Match": f'"{version}"'}


# --- threads ------------------------------------------------------------------------------------------------


def create_thread(
    *,
    title: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    messages: Sequence[NewMessage | Mapping[str, Any]] = (),
    idempotency_key: str | None = None,
) -> Call[Thread]:
    """Creates a thread, with up to 100 initial messages (a chain; the last is current). Retried safely."""
    body = given(title=title if title is not None else NOT_GIVEN, metadata=metadata or NOT_GIVEN)
    if messages:
        body["messages"] = [m.wire() if isinstance(m, NewMessage) else dict(m) for m in messages]
    return Call(
        method="POST",
        path="/api/threads",
        body=body,
        parse=model(Thread),
        safety=Safety.KEYED,
        headers=_key(idempotency_key),
        expect=frozenset({201}),
    )


def list_threads(
    *,
    status: Status | None = None,
    q: str | None = None,
    metadata: Mapping[str, str] | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[Page[Thread]]:
    """One page of the caller's threads, newest `updated_at` first."""
    params = query(limit=limit, cursor=cursor, status=status, q=q) + _metadata_filters(metadata)
    return Call(method="GET", path="/api/threads", params=params, parse=model(Page[Thread]), safety=Safety.READ)


def get_thread(thread_id: str) -> Call[Thread]:
    return Call(method="GET", path=_thread(thread_id), parse=model(Thread), safety=Safety.READ)


def _unless_not_modified(response: httpx.Response) -> Thread | None:
    return None if response.status_code == 304 else Thread.model_validate_json(response.content)


def get_thread_if_changed(thread_id: str, version: int) -> Call[Thread | None]:
    """The thread if its version is no longer `version` (`If-None-Match`), else None (304: unchanged)."""
    return Call(
        method="GET",
        path=_thread(thread_id),
        headers={"If-None-Match": f'"{version}"'},
        parse=_unless_not_modified,
        safety=Safety.READ,
        expect=frozenset({200, 304}),
    )


def update_thread(
    thread_id: str,
    *,
    title: str | NotGiven | None = NOT_GIVEN,
    metadata: Mapping[str, Any] | NotGiven = NOT_GIVEN,
    status: Literal["active", "archived"] | NotGiven = NOT_GIVEN,
    current_message_id: str | NotGiven = NOT_GIVEN,
    if_match: int | None = None,
) -> Call[Thread]:
    """PATCHes a thread (`metadata` is a JSON merge patch: a `None` value removes its key). Retried only with
    `if_match` (the version the change is based on): a 412 to a retry is then told apart by reading the
    thread — the first try landed (the thread is returned) or someone else changed it (PreconditionFailed)."""
    body = given(title=title, metadata=metadata, status=status, current_message_id=current_message_id)
    confirm = None
    if if_match is not None:
        expected = if_match + 1
        confirm = Confirm(get_thread(thread_id), lambda thread: thread.version == expected and _shows(thread, body))
    return Call(
        method="PATCH",
        path=_thread(thread_id),
        body=body,
        headers=_if_match(if_match),
        parse=model(Thread),
        safety=Safety.UNSAFE if if_match is None else Safety.REPEATABLE,
        confirm=confirm,
    )


def _shows(thread: Thread, patch: Mapping[str, Any]) -> bool:
    """Whether `thread` holds what `patch` set (the current message excepted: the server stores its leaf)."""
    for name in ("title", "status"):
        if name in patch and getattr(thread, name) != patch[name]:
            return False
    return "metadata" not in patch or _merged(thread.metadata, patch["metadata"])


def _merged(stored: Mapping[str, Any], patch: Mapping[str, Any]) -> bool:
    for key, value in patch.items():
        if value is None:
            if key in stored:
                return False
        elif isinstance(value, Mapping):
            inner = stored.get(key)
            if not isinstance(inner, Mapping) or not _merged(inner, value):
                return False
        elif stored.get(key) != value:
            return False
    return True


def switch_branch(thread_id: str, message_id: str, *, if_match: int | None = None) -> Call[Thread]:
    """Shows the branch through `message_id` (the thread's current message becomes the newest leaf under it).
    Idempotent: retried with or without `if_match`."""
    call = update_thread(thread_id, current_message_id=message_id, if_match=if_match)
    return replace(call, safety=Safety.REPEATABLE)


def archive_thread(thread_id: str) -> Call[Thread]:
    """Archives (soft delete). Idempotent: an archived thread is returned unchanged."""
    return Call(method="DELETE", path=_thread(thread_id), parse=model(Thread), safety=Safety.REPEATABLE)


def restore_thread(thread_id: str) -> Call[Thread]:
    """Brings an archived thread back (`status: active`). Idempotent: a repeat changes nothing."""
    return Call(
        method="PATCH",
        path=_thread(thread_id),
        body={"status": "active"},
        parse=model(Thread),
        safety=Safety.REPEATABLE,
    )


def delete_thread(thread_id: str) -> Call[None]:
    """Deletes a thread and its messages for good. A retry's 404 means the first try did it."""
    return Call(
        method="DELETE",
        path=_thread(thread_id),
        params=[("permanent", "true")],
        parse=nothing,
        safety=Safety.REPEATABLE,
        expect=frozenset({204}),
        gone_on_retry=lambda: None,
    )


def _auto_renamed(response: httpx.Response) -> AutoRename:
    thread = Thread.model_validate_json(response.content)
    return AutoRename(thread=thread, title_source=response.headers.get("x-title-source"))


def auto_rename(thread_id: str) -> Call[AutoRename]:
    """Titles the thread from its first user message; `title_source` says `llm` or `fallback`. A repeat
    titles it again from the same message, so it is retried."""
    return Call(method="POST", path=f"{_thread(thread_id)}/auto-rename", parse=_auto_renamed, safety=Safety.REPEATABLE)


def fork_thread(
    thread_id: str,
    *,
    message_id: str | NotGiven = NOT_GIVEN,
    title: str | NotGiven | None = NOT_GIVEN,
    metadata: Mapping[str, Any] | NotGiven = NOT_GIVEN,
    idempotency_key: str | None = None,
) -> Call[Thread]:
    """A new thread holding a copy of the path root → `message_id` (default: the current message). Retried
    safely (Idempotency-Key)."""
    return Call(
        method="POST",
        path=f"{_thread(thread_id)}/fork",
        body=given(message_id=message_id, title=title, metadata=metadata),
        parse=model(Thread),
        safety=Safety.KEYED,
        headers=_key(idempotency_key),
        expect=frozenset({201}),
    )


# --- messages -----------------------------------------------------------------------------------------------


def append_message(
    thread_id: str,
    content: ContentIn,
    *,
    role: Literal["user", "assistant", "system", "tool"] = "user",
    parent_id: str | NotGiven | None = NOT_GIVEN,
    metadata: Mapping[str, Any] | NotGiven = NOT_GIVEN,
    status: Literal["completed", "in_progress"] | NotGiven = NOT_GIVEN,
    model: str | NotGiven | None = NOT_GIVEN,
    usage: Usage | Mapping[str, int] | NotGiven | None = NOT_GIVEN,
    finish_reason: str | NotGiven | None = NOT_GIVEN,
    idempotency_key: str | None = None,
) -> Call[Message]:
    """Appends a message after the current one (`parent_id`: after that message, a new branch if it has
    children; `None`: a new root). Retried safely (Idempotency-Key)."""
    body = given(
        role=role,
        content=content,
        parent_id=parent_id,
        metadata=metadata,
        status=status,
        model=model,
        usage=usage,
        finish_reason=finish_reason,
    )
    return Call(
        method="POST",
        path=f"{_thread(thread_id)}/messages",
        body=body,
        parse=_message_model,
        safety=Safety.KEYED,
        headers=_key(idempotency_key),
        expect=frozenset({201}),
    )


_message_model = model(Message)


def list_messages(
    thread_id: str,
    *,
    order: Order | None = None,
    leaf: str | None = None,
    siblings_of: str | None = None,
    view: Literal["all"] | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[Page[Message]]:
    """One page of the active path (root → current); or the path to `leaf`; or the siblings of `siblings_of`;
    or with `view="all"` every message by `seq`."""
    params = query(limit=limit, cursor=cursor, order=order, leaf=leaf, siblings_of=siblings_of, view=view)
    return Call(
        method="GET",
        path=f"{_thread(thread_id)}/messages",
        params=params,
        parse=model(Page[Message]),
        safety=Safety.READ,
    )


def read_messages(
    thread_id: str,
    *,
    order: Order | None = None,
    leaf: str | None = None,
    siblings_of: str | None = None,
    view: Literal["all"] | None = None,
) -> Call[None]:
    """The whole selection as one streamed answer (`Accept: application/x-ndjson`), one message per line: read
    by the clients' `messages.read_all`, which parses each line as it arrives."""
    params = query(order=order, leaf=leaf, siblings_of=siblings_of, view=view)
    path = f"{_thread(thread_id)}/messages"
    ndjson = {"Accept": "application/x-ndjson"}
    return Call(method="GET", path=path, params=params, headers=ndjson, parse=nothing, safety=Safety.READ)


def get_message(thread_id: str, message_id: str) -> Call[Message]:
    return Call(method="GET", path=_message(thread_id, message_id), parse=_message_model, safety=Safety.READ)


def delete_message(thread_id: str, message_id: str) -> Call[None]:
    """Deletes the message and all its descendants (a branch). A retry's 404 means the first try did it."""
    return Call(
        method="DELETE",
        path=_message(thread_id, message_id),
        parse=nothing,
        safety=Safety.REPEATABLE,
        expect=frozenset({204}),
        gone_on_retry=lambda: None,
    )


def update_message(
    thread_id: str,
    message_id: str,
    *,
    status: Literal["completed", "incomplete", "in_progress"] | NotGiven = NOT_GIVEN,
    content: ContentIn | NotGiven = NOT_GIVEN,
    finish_reason: str | NotGiven | None = NOT_GIVEN,
    model: str | NotGiven | None = NOT_GIVEN,
    usage: Usage | Mapping[str, int] | NotGiven | None = NOT_GIVEN,
    metadata: Mapping[str, Any] | NotGiven = NOT_GIVEN,
) -> Call[Message]:
    """PATCHes a message: ends a reply (`status`), sets its final content, finish_reason, model, usage, or
    merges `metadata`. Retried as it is: a repeat of a PATCH that landed is a no-op 200."""
    body = given(
        status=status, content=content, finish_reason=finish_reason, model=model, usage=usage, metadata=metadata
    )
    return Call(
        method="PATCH", path=_message(thread_id, message_id), body=body, parse=_message_model, safety=Safety.REPEATABLE
    )


def append_delta(thread_id: str, message_id: str, offset: int, text: str) -> Call[DeltaResult]:
    """Appends `text` to an in_progress reply whose stored length (in code points) is `offset`. Retried with
    the same offset: a repeat of stored text answers as the first time."""
    return Call(
        method="POST",
        path=f"{_message(thread_id, message_id)}/deltas",
        body={"offset": offset, "text": text},
        parse=model(DeltaResult),
        safety=Safety.REPEATABLE,
    )


# --- feedback -----------------------------------------------------------------------------------------------


def set_feedback(
    thread_id: str, message_id: str, rating: Literal["up", "down"], *, comment: str | None = None
) -> Call[Message]:
    """Sets (or replaces) the message's feedback; idempotent."""
    return Call(
        method="PUT",
        path=f"{_message(thread_id, message_id)}/feedback",
        body=given(rating=rating, comment=comment if comment is not None else NOT_GIVEN),
        parse=_message_model,
        safety=Safety.REPEATABLE,
    )


def clear_feedback(thread_id: str, message_id: str) -> Call[None]:
    """Removes the message's feedback (204 also when there was none); idempotent."""
    return Call(
        method="DELETE",
        path=f"{_message(thread_id, message_id)}/feedback",
        parse=nothing,
        safety=Safety.REPEATABLE,
        expect=frozenset({204}),
    )


# --- search, events, health ---------------------------------------------------------------------------------


def search(
    q: str,
    *,
    status: Status | None = None,
    sort: Literal["relevance", "recent"] | None = None,
    metadata: Mapping[str, str] | None = None,
    limit: int | None = None,
    cursor: str | None = None,
) -> Call[Page[SearchResult]]:
    """One page of the caller's threads whose title or messages hold every word of `q`."""
    params = query(q=q, limit=limit, cursor=cursor, status=status, sort=sort) + _metadata_filters(metadata)
    return Call(method="GET", path="/api/search", params=params, parse=model(Page[SearchResult]), safety=Safety.READ)


def _events_cookie(response: httpx.Response) -> EventsSession:
    cookie = response.cookies.get("threadstore_events") or ""
    max_age = None
    for header in response.headers.get_list("set-cookie"):
        for attribute in header.split(";"):
            name, _, value = attribute.strip().partition("=")
            if name.lower() == "max-age" and value.isdigit():
                max_age = int(value)
    return EventsSession(cookie=cookie, max_age=max_age)


def events_session() -> Call[EventsSession]:
    """`POST /api/events/session`: the cookie a browser's EventSource uses in place of the bearer token."""
    return Call(
        method="POST",
        path="/api/events/session",
        parse=_events_cookie,
        safety=Safety.REPEATABLE,
        expect=frozenset({204}),
    )


def _ok(response: httpx.Response) -> bool:
    return response.status_code == 200


def healthz() -> Call[bool]:
    """Whether the process is alive (no retry: a probe reports what it sees)."""
    return Call(method="GET", path="/healthz", parse=_ok, safety=Safety.READ, retry=False)


def readyz() -> Call[bool]:
    """Whether the server reaches its database with the schema current: False on its 503."""
    return Call(method="GET", path="/readyz", parse=_ok, safety=Safety.READ, expect=frozenset({200, 503}), retry=False)


# --- streamed replies (the calls of `stream_reply`) ---------------------------------------------------------


def start_reply(
    thread_id: str,
    *,
    parent_id: str | NotGiven | None,
    model: str | None,
    metadata: Mapping[str, Any] | None,
) -> Call[Message]:
    """The empty `in_progress` assistant message a streamed reply grows in."""
    return append_message(
        thread_id,
        "",
        role="assistant",
        status="in_progress",
        parent_id=parent_id,
        model=NOT_GIVEN if model is None else model,
        metadata=NOT_GIVEN if metadata is None else metadata,
    )


def end_reply(
    reply: Reply,
    status: Literal["completed", "incomplete"],
    finish_reason: str,
    usage: Usage | Mapping[str, int] | None,
) -> Call[Message]:
    """The closing PATCH of a streamed reply (a retry of it that lands twice is a no-op 200)."""
    return update_message(
        reply.thread_id,
        reply.message_id,
        status=status,
        finish_reason=finish_reason,
        usage=NOT_GIVEN if usage is None else usage,
    )
