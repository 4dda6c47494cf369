"""Rules about messages. Every function runs inside a unit of work it is handed; none commits.

A thread's messages form a tree: each has a parent (None for a root), and the thread's current message is the
leaf of its active path (API.md, "Branches")."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.engine import RowMapping

from threadstore import cursors
from threadstore.db.outbox import MESSAGE_CREATED, Event
from threadstore.db.unit_of_work import Database, Tx, from_replica, one_write
from threadstore.errors import Conflict, NotFound, Unprocessable, thread_not_found
from threadstore.ids import new_id
from threadstore.limits import Limits, checked_text
from threadstore.messages import parts, repository
from threadstore.messages.parts import Part
from threadstore.messages.schemas import MessageContent, MessageCreate, message_json
from threadstore.search.index import indexed, owned

Order = Literal["asc", "desc"]


@one_write
async def append(tx: Tx, user_id: str, thread_id: str, body: MessageCreate, limits: Limits) -> dict[str, Any]:
    row = _row(tx, user_id, thread_id, None, body, limits, ("body",))
    # Where the message goes is decided by the write (the thread's row lock orders concurrent appends, so seqs
    # are gapless and in commit order, and "after the current message" means the current one as of the
    # commit); the event takes those values from it.
    if body.follows_current:
        message = message_json(row | {"parent_id": None, "depth": 1, "sibling_index": 1, "sibling_count": 1})
        event = _created_event(user_id, row, message, ("seq", "parent_id", "depth"))
        placed = await repository.append_after_current(tx, user_id, row, event)
    else:
        message = message_json(row | {"parent_id": body.parent_id, "depth": 1, "sibling_index": 1, "sibling_count": 1})
        event = _created_event(user_id, row, message, ("seq", "depth", "sibling_index", "sibling_count"))
        placed = await repository.append_child(tx, user_id, row, body.parent_id, event)
    if placed is None:
        status = await repository.thread_status(tx, user_id, thread_id)
        if status is None:
            raise thread_not_found()
        if status == "archived":
            raise Conflict("The thread is archived; restore it before adding messages.", reason="archived")
        raise not_a_message_of_the_thread(("body", "parent_id"))
    return message | placed


def not_a_message_of_the_thread(loc: tuple[str, ...]) -> Unprocessable:
    # The same words whatever the id names (nothing, another thread's or another user's message): nothing leaks.
    return Unprocessable("No message with this id in this thread.", errors=[{"loc": list(loc), "msg": "not found"}])


def message_not_found() -> NotFound:
    return NotFound("No message with this id.")


def initial_rows(
    tx: Tx, user_id: str, thread_id: str, initial: Sequence[MessageContent], limits: Limits
) -> list[dict[str, Any]]:
    """The rows of a new thread's first messages: a chain numbered from 1, the last one current (its creation
    writes them, on the thread's trunk)."""
    limits.initial_message_count(len(initial), ("body", "messages"))
    rows = [
        _row(tx, user_id, thread_id, seq, m, limits, ("body", "messages", seq - 1)) for seq, m in enumerate(initial, 1)
    ]
    for i, row in enumerate(rows):
        row |= {"depth": i + 1, "parent_id": rows[i - 1]["id"] if i else None, "sibling_index": 1}
    return rows


def _row(
    tx: Tx,
    user_id: str,
    thread_id: str,
    seq: int | None,
    body: MessageContent,
    limits: Limits,
    loc: tuple[str | int, ...],
) -> dict[str, Any]:
    in_progress = body.status == "in_progress"
    content, stored_parts = stored_content(limits.content(body.content, (*loc, "content"), empty=in_progress))
    return {
        "id": new_id("msg"),
        "thread_id": thread_id,
        "seq": seq,
        "role": body.role,
        "content": content,
        "metadata": limits.metadata(body.metadata, (*loc, "metadata")),
        "created_at": tx.now,
        "status": body.status,
        "finish_reason": _text(body.finish_reason, (*loc, "finish_reason")),
        "model": _text(body.model, (*loc, "model")),
        "input_tokens": body.usage.input_tokens if body.usage is not None else None,
        "output_tokens": body.usage.output_tokens if body.usage is not None else None,
        "parts": stored_parts,
        "content_length": len(content),
        # An unfinished reply is active from its creation: the stale sweep counts from here.
        "active_at": tx.now if in_progress else None,
        "feedback_rating": None,
        "feedback_comment": None,
        "feedback_at": None,
        # Indexed when it is finished: a reply's closing PATCH or the stale sweep indexes it (replies.py).
        "search_terms": None if in_progress else owned(user_id, body.terms),
    }


def stored_content(content: str | list[Part]) -> tuple[str, list[dict[str, Any]] | None]:
    """The text column and the parts column of checked content: parts are stored as returned, and their text
    parts' text goes in the text column, which auto-rename (and search) read."""
    if isinstance(content, str):
        return content, None
    return parts.text_of(content), parts.wire(content)


def _text(value: str | None, loc: tuple[str | int, ...]) -> str | None:
    return None if value is None else checked_text(value, loc)


def _created_event(user_id: str, row: dict[str, Any], message: dict[str, Any], stored: tuple[str, ...]) -> Event:
    """A finished message's text never changes, so its event refers to it instead of copying it; an unfinished
    one's grows (or is replaced), so its event carries the text as it is now and is erased with the message."""
    if row["status"] != "in_progress" and row["parts"] is None:
        return Event(user_id, row["thread_id"], MESSAGE_CREATED, message, stored=stored, content_of=row["id"])
    return Event(user_id, row["thread_id"], MESSAGE_CREATED, message, stored=stored, message_id=row["id"])


@dataclass(frozen=True)
class Selection:
    """Which messages a list holds: the active path (nothing set), the path to `leaf`, the siblings of
    `siblings_of`, or every message by seq (`all`). At most one is set (the router checks)."""

    leaf: str | None = None
    siblings_of: str | None = None
    all: bool = False


@from_replica
async def list_messages(
    tx: Tx,
    user_id: str,
    thread_id: str,
    *,
    limit: int,
    cursor: str | None,
    order: Order,
    selection: Selection = Selection(),
) -> dict[str, Any]:
    if selection.all:
        rows, next_cursor = await _by_seq(tx, user_id, thread_id, order, limit, cursor)
    elif selection.siblings_of is not None:
        rows, next_cursor = await _siblings(tx, user_id, thread_id, selection.siblings_of, order, limit, cursor)
    elif selection.leaf is not None:
        rows, next_cursor = await _leaf_path(tx, user_id, thread_id, selection.leaf, order, limit, cursor)
    else:
        rows, next_cursor = await _active_path(tx, user_id, thread_id, order, limit, cursor)
    if not rows and await repository.thread_status(tx, user_id, thread_id) is None:
        raise thread_not_found()
    data = [message_json(r) for r in rows]
    return {"object": "list", "data": data, "next_cursor": next_cursor, "has_more": next_cursor is not None}


# A whole selection (`every_page`) is read in pages of at most WHOLE_PAGE_SIZE messages and about
# WHOLE_PAGE_CHARS characters of content: a page is what a stream holds in memory at a time, so with long
# messages the pages get shorter (a message may be 262,144 characters). The first page, whose sizes are not
# known yet, is WHOLE_FIRST_PAGE_SIZE messages; each next one is sized from the one before.
WHOLE_PAGE_SIZE = 500
WHOLE_FIRST_PAGE_SIZE = 50
WHOLE_PAGE_CHARS = 1 << 20


async def every_page(
    database: Database, user_id: str, thread_id: str, *, order: Order, selection: Selection
) -> AsyncGenerator[list[dict[str, Any]], None]:
    """Every message of the selection, page by page, each page read by `list_messages` as a unit of work of its
    own: nothing is held between two pages, however long the caller takes to consume one.

    The first page is read before this returns, so its errors (the thread or a named message unknown) are the
    caller's answer. Each next page continues from the previous page's cursor, so the active path is the one
    resolved by the first read, and a message added meanwhile may or may not appear but none repeats or is
    skipped: exactly what walking the pages of the JSON list gives."""
    page = await database.read(
        list_messages, user_id, thread_id, limit=WHOLE_FIRST_PAGE_SIZE, cursor=None, order=order, selection=selection
    )
    return _following(database, page, user_id, thread_id, order, selection)


async def _following(
    database: Database, page: dict[str, Any], user_id: str, thread_id: str, order: Order, selection: Selection
) -> AsyncGenerator[list[dict[str, Any]], None]:
    while True:
        data, cursor = page["data"], page["next_cursor"]
        del page  # one page at a time: the next is read while the caller holds this one's data at most
        limit = _next_page_size(data)
        yield data
        del data
        if cursor is None:
            return
        page = await database.read(
            list_messages, user_id, thread_id, limit=limit, cursor=cursor, order=order, selection=selection
        )


def _next_page_size(data: list[dict[str, Any]]) -> int:
    chars = sum(len(message["content"]) for message in data)
    if chars == 0:
        return WHOLE_PAGE_SIZE
    return max(1, min(WHOLE_PAGE_SIZE, WHOLE_PAGE_CHARS * len(data) // chars))


Page = tuple[list[RowMapping], str | None]


async def _by_seq(tx: Tx, user_id: str, thread_id: str, order: Order, limit: int, cursor: str | None) -> Page:
    after = cursors.decode_message_cursor(cursor, "all")[0] if cursor else None
    rows = await repository.seq_page(tx, user_id, thread_id, order=order, limit=limit + 1, after=after)
    has_more = len(rows) > limit
    rows = rows[:limit]
    return rows, cursors.encode_message_cursor("all", rows[-1]["seq"]) if has_more else None


async def _siblings(
    tx: Tx, user_id: str, thread_id: str, message_id: str, order: Order, limit: int, cursor: str | None
) -> Page:
    after = cursors.decode_message_cursor(cursor, "siblings", message_id)[0] if cursor else None
    rows = await repository.siblings_page(tx, user_id, thread_id, message_id, order=order, limit=limit + 1, after=after)
    if not rows and await repository.position(tx, user_id, thread_id, message_id) is None:
        raise message_not_found()
    has_more = len(rows) > limit
    rows = rows[:limit]
    return rows, cursors.encode_message_cursor("siblings", message_id, rows[-1]["sibling_index"]) if has_more else None


async def _active_path(tx: Tx, user_id: str, thread_id: str, order: Order, limit: int, cursor: str | None) -> Page:
    """A page of the active path. Its cursor keeps the path of the first page: the current message's branch,
    to its tip, so appends after the current message show on later pages (as on a line in version 1) and a
    branch switch meanwhile does not splice another path in (tree_sql.py)."""
    if order == "asc":
        branch, after = cursors.decode_message_cursor(cursor, "path") if cursor else (None, 0)
        rows = await repository.path_page(tx, user_id, thread_id, order="asc", limit=limit, branch=branch, after=after)
        if rows and rows[-1]["depth"] < rows[-1]["leaf_depth"]:
            return rows, cursors.encode_message_cursor("path", rows[-1]["path_branch"], rows[-1]["depth"])
        return rows, None
    branch, before = cursors.decode_message_cursor(cursor, "path-desc") if cursor else (None, None)
    rows = await repository.path_page(tx, user_id, thread_id, order="desc", limit=limit, branch=branch, before=before)
    return rows, _above(rows, "path-desc")


async def _leaf_path(
    tx: Tx, user_id: str, thread_id: str, leaf: str, order: Order, limit: int, cursor: str | None
) -> Page:
    """A page of the path root → `leaf`."""
    if cursor:
        kind = "leaf" if order == "asc" else "leaf-desc"
        held = cursors.decode_message_cursor(cursor, kind, leaf)
        branch, leaf_depth, bound = (held[0], held[1], held[2]) if order == "asc" else (held[0], None, held[1])
    else:
        at = await repository.position(tx, user_id, thread_id, leaf)
        if at is None:
            raise message_not_found()
        branch, leaf_depth = at["branch_id"], at["depth"]
        bound = 0 if order == "asc" else at["depth"] + 1
    if order == "asc":
        rows = await repository.path_page(
            tx, user_id, thread_id, order="asc", limit=limit, branch=branch, leaf_depth=leaf_depth, after=bound
        )
        if rows and rows[-1]["depth"] < rows[-1]["leaf_depth"]:
            last = rows[-1]
            return rows, cursors.encode_message_cursor(
                "leaf", leaf, last["path_branch"], last["leaf_depth"], last["depth"]
            )
        return rows, None
    rows = await repository.path_page(tx, user_id, thread_id, order="desc", limit=limit, branch=branch, before=bound)
    return rows, _above(rows, "leaf-desc", leaf)


def _above(rows: list[RowMapping], kind: str, *named: str) -> str | None:
    """A descending path page's cursor: the path above its last row's branch, before its depth."""
    if rows and rows[-1]["depth"] > 1:
        return cursors.encode_message_cursor(kind, *named, rows[-1]["branch_id"], rows[-1]["depth"])
    return None


@from_replica
async def get(tx: Tx, user_id: str, thread_id: str, message_id: str) -> dict[str, Any]:
    row = await repository.get(tx, user_id, thread_id, message_id)
    if row is None:
        raise message_not_found()
    return message_json(row)


async def first_user_text(tx: Tx, user_id: str, thread_id: str) -> str | None:
    """The content of the first user message of the thread's active path, which titles it."""
    return await repository.first_user_on_active_path(tx, thread_id, user_id)


@dataclass(frozen=True)
class Leaf:
    id: str | None
    branch_id: int
    depth: int


async def newest_leaf_from(tx: Tx, user_id: str, thread_id: str, message_id: str) -> Leaf | None:
    """The leaf reached from the thread's message by following the child created last at each step; None when
    the id names no message of the owned thread."""
    at = await repository.position(tx, user_id, thread_id, message_id)
    if at is None:
        return None
    leaf = await repository.newest_leaf(tx, at["branch_id"], at["depth"])
    if leaf is None:  # cannot happen: the message itself is on the way
        return Leaf(message_id, at["branch_id"], at["depth"])
    return Leaf(leaf["id"], leaf["branch_id"], leaf["depth"])


async def delete_subtree(tx: Tx, thread_id: str, message_id: str) -> repository.Deleted:
    """Deletes the thread's message and all its descendants (under the thread's lock); 404 if there is none."""
    deleted = await repository.delete_subtree(tx, thread_id, message_id)
    if deleted is None:
        raise message_not_found()
    return deleted


async def newest_created_at(tx: Tx, thread_id: str) -> Any:
    return await repository.newest_created_at(tx, thread_id)


async def exists(tx: Tx, message_id: str | None) -> bool:
    return await repository.exists(tx, message_id)


async def newest_leaf_at(tx: Tx, branch_id: int, depth: int) -> Leaf:
    """The leaf reached from the message at `depth` of `branch_id` (depth 0 of the trunk: from the newest
    root). Its id is None when there is none (a thread whose last message went)."""
    leaf = await repository.newest_leaf(tx, branch_id, depth)
    if leaf is None:
        return Leaf(None, branch_id, 0)
    return Leaf(leaf["id"], leaf["branch_id"], leaf["depth"])


async def copy_path(
    tx: Tx, user_id: str, source_id: str, message_id: str, new_thread_id: str, trunk: int
) -> RowMapping | None:
    """Copies the path root → `message_id` of the source thread onto the new thread's trunk, as one snapshot:
    the last copy (id, seq = how many, created_at), or None when the source has no such message. A copy of an
    unfinished reply is finished (`incomplete`): it is indexed here, its text being known only now."""
    last = await repository.copy_path(tx, source_id, message_id, new_thread_id, trunk)
    if last is not None:
        for copy in await repository.unindexed(tx, new_thread_id):
            await repository.set_search_terms(tx, copy["id"], indexed(user_id, copy["content"]))
    return last
