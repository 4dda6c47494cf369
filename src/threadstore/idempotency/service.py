"""Idempotency keys (Stripe's design): the key, a fingerprint of the request and the response are stored in
the same transaction as the write, so a key exists exactly when its write committed.

A repeat with the same fingerprint replays the stored response and writes nothing; another fingerprint is
422; a repeat while the first is still in flight is 409 (it cannot yet know the outcome).
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import orjson
from pydantic import BaseModel

from threadstore.db.unit_of_work import Database, Tx
from threadstore.errors import BadRequest, Conflict, Unprocessable
from threadstore.idempotency import repository

MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    replayed: bool = False


@dataclass(frozen=True)
class IdempotentRequest:
    key: str
    fingerprint: str


def parse_key(raw: str | None, method: str, path: str, body: BaseModel) -> IdempotentRequest | None:
    if raw is None:
        return None
    if not 1 <= len(raw) <= MAX_KEY_LENGTH or not all(0x20 <= ord(ch) <= 0x7E for ch in raw):
        raise BadRequest("Idempotency-Key must be 1 to 255 printable ASCII characters.")
    # The fingerprint is of the parsed body with defaults filled in, so formatting differences or an
    # explicit default value do not count as a different request.
    # Dumped only here: most requests carry no key, and dumping a body is not free.
    canonical = orjson.dumps([method, path, body.model_dump(mode="json")], option=orjson.OPT_SORT_KEYS)
    return IdempotentRequest(key=raw, fingerprint=hashlib.sha256(canonical).hexdigest())


async def write_once(
    database: Database,
    user_id: str,
    request: IdempotentRequest | None,
    ttl_seconds: int,
    produce: Callable[[Tx], Awaitable[StoredResponse]],
    *,
    single_statement: bool = False,
) -> StoredResponse:
    """Runs `produce` as one unit of work, or replays the stored response of an earlier run with this key.

    `single_statement`: `produce` writes with one statement; honoured only without a key, since recording the
    key is a second write that must commit with it."""
    return await database.write(
        lambda tx: run_once(tx, user_id, request, ttl_seconds, lambda: produce(tx)),
        single_statement=single_statement and request is None,
    )


async def run_once(
    tx: Tx,
    user_id: str,
    request: IdempotentRequest | None,
    ttl_seconds: int,
    produce: Callable[[], Awaitable[StoredResponse]],
) -> StoredResponse:
    if request is None:
        return await produce()
    if not await repository.try_lock(tx, user_id, request.key):
        raise Conflict("A request with this Idempotency-Key is still in progress.")
    existing = await repository.find(tx, user_id, request.key)
    if existing is not None:
        if existing["created_at"] >= tx.now - timedelta(seconds=ttl_seconds):
            if existing["fingerprint"] != request.fingerprint:
                raise Unprocessable(
                    "This Idempotency-Key was used with a different request.",
                    errors=[{"loc": ["header", "Idempotency-Key"], "msg": "key reused with a different body"}],
                )
            return StoredResponse(
                status=existing["status_code"],
                body=existing["response_body"].encode(),
                headers=orjson.loads(existing["response_headers"]),
                replayed=True,
            )
        await repository.remove(tx, user_id, request.key)  # expired: the key is free again
    response = await produce()
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
        },
    )
    return response
