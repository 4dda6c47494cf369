"""Idempotency keys (Stripe's design): the key, a fingerprint of the request and the response are stored in
the same transaction as the write, so a key exists exactly when its write committed.

A repeat with the same fingerprint replays the stored response and writes nothing; another fingerprint is
422; a repeat while the first is still in flight is 409 (it cannot yet know the outcome).

A stored response names the thread whose content it holds. The thread's permanent delete erases the stored
responses of that thread (`forget_thread`, in the delete's transaction): a repeat of such a key then answers
the 404 of a missing thread and writes nothing, so nothing deleted is ever replayed (API.md, version 2).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import ParamSpec, TypeVar

import orjson
from pydantic import BaseModel

from threadstore import legacy
from threadstore.db.unit_of_work import Database, Tx, Work
from threadstore.errors import BadRequest, Conflict, Unprocessable, thread_not_found
from threadstore.idempotency import repository
from threadstore.idempotency.schemas import KEY_PATTERN, IdempotentRequest, StoredResponse

_KEY = re.compile(KEY_PATTERN)
PRUNE_BATCH = 1000
# The status an erased record keeps in place of its response (stored responses are otherwise always 2xx: a
# failed request stores nothing). A repeat of its key answers as a missing thread does.
ERASED = 404

P = ParamSpec("P")
T = TypeVar("T")


def parse_key(raw: str | None, user_id: str, method: str, path: str, body: BaseModel) -> IdempotentRequest | None:
    if raw is None:
        return None
    if not _KEY.fullmatch(raw):
        raise BadRequest("Idempotency-Key must be 1 to 255 printable ASCII characters.")
    # The fingerprint is of the parsed body with defaults filled in, so formatting differences or an
    # explicit default value do not count as a different request.
    # Dumped only here: most requests carry no key, and dumping a body is not free.
    canonical = orjson.dumps([method, path, body.model_dump(mode="json")], option=orjson.OPT_SORT_KEYS)
    return IdempotentRequest(user_id=user_id, key=raw, fingerprint=hashlib.sha256(canonical).hexdigest())


async def write_once(
    database: Database,
    request: IdempotentRequest | None,
    ttl_seconds: int,
    respond: Callable[[T], StoredResponse],
    work: Work[P, T],
    *args: P.args,
    **kwargs: P.kwargs,
) -> StoredResponse:
    """Runs `work` as a unit of work and `respond` to its result, or replays the stored response of an earlier
    run with this key. A key is recorded with the write, so a keyed request is a unit of its own."""
    if request is None:
        return respond(await database.write(work, *args, **kwargs))

    async def keyed(tx: Tx) -> StoredResponse:
        return await run_once(tx, request, ttl_seconds, lambda: work(tx, *args, **kwargs), respond)

    return await database.write(keyed)


async def run_once(
    tx: Tx,
    request: IdempotentRequest,
    ttl_seconds: int,
    produce: Callable[[], Awaitable[T]],
    respond: Callable[[T], StoredResponse],
) -> StoredResponse:
    user_id = request.user_id
    if not await repository.try_lock(tx, user_id, request.key):
        raise Conflict("A request with this Idempotency-Key is still in progress.", reason="in-flight")
    existing = await repository.find(tx, user_id, request.key)
    if existing is not None:
        if existing["created_at"] >= tx.now - timedelta(seconds=ttl_seconds):
            if existing["fingerprint"] != request.fingerprint:
                raise Unprocessable(
                    "This Idempotency-Key was used with a different request.",
                    errors=[{"loc": ["header", "Idempotency-Key"], "msg": "key reused with a different body"}],
                )
            if existing["status_code"] == ERASED:
                raise thread_not_found()  # not a replay: the problem is made now, with this request's id
            return StoredResponse(
                status=existing["status_code"],
                body=await _completed(tx, existing["response_body"]),
                headers=orjson.loads(existing["response_headers"]),
                replayed=True,
            )
        await repository.remove(tx, user_id, request.key)  # expired: the key is free again
    response = respond(await produce())
    await repository.insert_record(
        tx,
        {
            "user_id": user_id,
            "key": request.key,
            "fingerprint": request.fingerprint,
            "status_code": response.status,
            "response_body": response.body.decode(),
            "response_headers": orjson.dumps(response.headers).decode(),
            "created_at": tx.now,
            "thread_id": response.thread_id,
            "message_id": response.message_id,
        },
    )
    return response


async def forget_thread(tx: Tx, user_id: str, thread_id: str) -> None:
    """Erases the stored responses of `user_id`'s keys that hold `thread_id`'s content: from now on a repeat of
    such a key answers 404 and writes nothing. For the thread's permanent delete, in its unit of work, after the
    delete itself (threads/service.py says why that order)."""
    await repository.erase_thread(tx, user_id, thread_id, ERASED)


async def delete_expired(tx: Tx, ttl_seconds: int) -> int:
    """Deletes up to a batch of records older than the TTL; bounded so one unit never holds locks long."""
    return await repository.delete_expired(tx, tx.now - timedelta(seconds=ttl_seconds), PRUNE_BATCH)


async def forget_deleted_messages(tx: Tx, user_id: str, thread_id: str) -> None:
    """Erases the stored responses of `user_id`'s keys that created a message of `thread_id` which no longer
    exists: for a branch delete, in its unit of work, after the delete."""
    await repository.erase_deleted_messages(tx, user_id, thread_id, ERASED)


async def _completed(tx: Tx, body: str) -> bytes:
    """A stored response's body as it is replayed: a message or thread stored before version 2 gets the fields
    it lacks, with the values they had then (legacy.py)."""
    if '"current_message_id"' in body or legacy.REPLY_MARK in body:
        return body.encode()  # written by this version: complete (the test is cheap, most bodies pass it)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body.encode()
    if legacy.lacks_message_fields(data):
        place = await repository.message_place(tx, data.get("id"))
        parent_id, depth, index = place if place is not None else (None, data.get("seq"), 1)
        members = legacy.message_members(parent_id, depth, index) + "," + legacy.REPLY_MEMBERS
    elif legacy.lacks_reply_fields(data):
        members = legacy.REPLY_MEMBERS
    elif legacy.lacks_thread_fields(data):
        count = data.get("message_count")
        members = legacy.thread_members(await repository.message_at(tx, data.get("id"), count) if count else None)
    else:
        return body.encode()
    text = body.rstrip()
    return (text[:-1] + ("," if len(text) > 2 else "") + members + "}").encode()
