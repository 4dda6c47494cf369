"""A keyed request, and the response stored for it: replayed as it was, with `Idempotent-Replayed: true`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Header
from pydantic.json_schema import SkipJsonSchema
from starlette.responses import Response

MAX_KEY_LENGTH = 255
# 1 to 255 printable ASCII characters. HTTP trims white space around a header value, so a key can neither
# begin nor end with a space: the pattern says so, and the OpenAPI document gives it as the key's format.
KEY_PATTERN = rf"^[\x21-\x7e](?:[\x20-\x7e]{{0,{MAX_KEY_LENGTH - 2}}}[\x21-\x7e])?$"

# Checked by the service, not by FastAPI: a malformed key is 400 (docs/api.md), not a validation error.
IdempotencyKeyHeader = Annotated[
    str | SkipJsonSchema[None],
    Header(
        alias="Idempotency-Key",
        description="Makes the request safe to retry: a repeat within the TTL with the same body replays the "
        "first answer and writes nothing; with another body (or path) it is 422.",
        json_schema_extra={"pattern": KEY_PATTERN},
    ),
]


@dataclass(frozen=True)
class IdempotentRequest:
    user_id: str
    key: str
    fingerprint: str


@dataclass(frozen=True)
class StoredResponse:
    """`thread_id`: the thread whose content the response holds. When that thread is deleted for good, the
    stored response is erased: a repeat of the key answers 404 instead of replaying it."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    thread_id: str | None = None
    # The message the request created (a keyed append): a delete of its branch erases the response too.
    message_id: str | None = None
    replayed: bool = False

    def to_http(self) -> Response:
        headers = dict(self.headers)
        if self.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(self.body, status_code=self.status, media_type="application/json", headers=headers)
