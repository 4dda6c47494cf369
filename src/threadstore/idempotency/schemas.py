"""A keyed request, and the response stored for it: replayed as it was, with `Idempotent-Replayed: true`."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.responses import Response


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
    replayed: bool = False

    def to_http(self) -> Response:
        headers = dict(self.headers)
        if self.replayed:
            headers["Idempotent-Replayed"] = "true"
        return Response(self.body, status_code=self.status, media_type="application/json", headers=headers)
