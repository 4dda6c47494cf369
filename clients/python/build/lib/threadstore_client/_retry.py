"""When to try a request again, and after how long: pure decisions, no I/O and no sleeping (the sync and the
async client each sleep their own way).

What a retry may do depends on what the request is (`Safety`):

- `READ`: a GET. Always safe.
- `KEYED`: a create, an append or a fork, sent with an `Idempotency-Key` made once per call and reused on every
  attempt: the server stores the first answer and replays it, so a retry never writes twice. A 409
  `in-flight` (the first attempt is still running on the server) is waited out like a 503.
- `REPEATABLE`: a repeat does what the first did or nothing — a delta (its offset and text: a repeat of stored
  text answers as the first time), a message PATCH (a repeated closing PATCH is a no-op 200), feedback,
  archive, restore, auto-rename, a thread PATCH with `If-Match`, and the deletes (whose retry's 404 means
  "done", see `Call.gone_on_retry`).
- `UNSAFE`: a thread PATCH without `If-Match` (a retry could overwrite someone else's change). Retried only
  when the request certainly did not take effect: it was never sent, or the server answered 429 or 503 (a
  failed request leaves no trace: the contract).
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

from threadstore_client.errors import APIConnectionError

# Answers after which nothing was written (API.md: a failed request leaves no trace), so any request may
# be sent again. 502 and 504 come from a proxy in front of the server and are treated alike.
_TRANSIENT = frozenset({429, 502, 503, 504})


class Safety(enum.Enum):
    READ = "read"
    KEYED = "keyed"
    REPEATABLE = "repeatable"
    UNSAFE = "unsafe"


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts`: tries in all (1 = never retry). The n-th retry waits `initial * multiplier**(n-1)` seconds,
    at most `cap`, less a random share of up to `jitter` (so clients that failed together do not come back
    together), and at least what `Retry-After` asked for — unless that is over `max_retry_after`, then the error
    is raised instead of waiting that long."""

    attempts: int = 8
    initial: float = 0.25
    multiplier: float = 2.0
    cap: float = 5.0
    jitter: float = 0.5
    max_retry_after: float = 60.0

    def backoff(self, attempt: int) -> float:
        """The wait after the `attempt`-th try (1-based) failed."""
        base = min(self.cap, self.initial * self.multiplier ** max(0, attempt - 1))
        return base * (1.0 - self.jitter * random.random())

    @classmethod
    def never(cls) -> RetryPolicy:
        return cls(attempts=1)


def after_transport_error(policy: RetryPolicy, safety: Safety, attempt: int, error: APIConnectionError) -> float | None:
    """Seconds to wait before the next try, or None to raise `error`."""
    if attempt >= policy.attempts:
        return None
    if safety is Safety.UNSAFE and error.sent:
        return None
    return policy.backoff(attempt)


def after_status(
    policy: RetryPolicy, safety: Safety, attempt: int, status: int, reason: str | None, retry_after: float | None
) -> float | None:
    """Seconds to wait before the next try after an error status, or None to raise it."""
    if attempt >= policy.attempts:
        return None
    in_flight = status == 409 and reason == "in-flight" and safety is Safety.KEYED
    if status not in _TRANSIENT and not in_flight:
        return None
    wait = policy.backoff(attempt)
    if retry_after is not None:
        if retry_after > policy.max_retry_after:
            return None
        wait = max(wait, retry_after)
    return wait
