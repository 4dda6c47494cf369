"""Bearer JWT authentication: HS256 with the configured secret; `sub` is the user id."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import jwt

from threadstore.errors import Unauthorized

MAX_USER_ID = 255


CACHE_SIZE = 10_000
EVENTS_SCOPE = "threadstore:events"

_REFUSED = "The bearer token is missing, malformed, expired or not validly signed."
# RFC 7519 NumericDate claims. PyJWT checks them with int(), which takes "1796332044" and True as well.
_TIME_CLAIMS = ("exp", "nbf", "iat")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a token speaks for, and until when: `expires_at` is its `exp` (seconds since the epoch), from
    which it is refused, or None for a token without one. A response that outlives its request (an event
    stream) ends there."""

    user_id: str
    expires_at: float | None
    # A token this server made for the `threadstore_events` cookie (`events_token`): it opens the caller's event
    # stream and nothing else, so it is refused as a bearer token.
    events_only: bool = False

    def expired(self, now: float) -> bool:
        # RFC 7519 §4.1.4: the current time must be before exp. The one comparison, for fresh and remembered.
        return self.expires_at is not None and now >= self.expires_at


class TokenVerifier:
    """Verifies bearer tokens, remembering verified ones: clients send the same token on every request and
    an HMAC check plus JSON decoding per request is a measurable share of a fast read (docs/performance.md).
    A remembered token is refused from the moment its `exp` passes, by the same comparison as a fresh one."""

    def __init__(self, secret: str, *, require_exp: bool = False) -> None:
        self._secret = secret
        self._require_exp = require_exp
        self._verified: dict[str, Identity] = {}

    def user_id(self, authorization: str | None) -> str:
        return self.verify(authorization).user_id

    def verify(self, authorization: str | None) -> Identity:
        """The identity of an `Authorization: Bearer` header; never of an events cookie's token."""
        if not authorization:
            raise Unauthorized()
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized()
        identity = self._identity(token)
        if identity.events_only:
            raise Unauthorized(_REFUSED)
        return identity

    def verify_events_cookie(self, token: str | None) -> Identity:
        """The identity of a `threadstore_events` cookie: only a token `events_token` made."""
        if not token:
            raise Unauthorized()
        identity = self._identity(token)
        if not identity.events_only:
            raise Unauthorized(_REFUSED)
        return identity

    def events_token(self, identity: Identity, now: float, default_ttl: float) -> tuple[str, float]:
        """A token for the events cookie of `identity`, and when it expires: the bearer token's `exp`, or
        `default_ttl` from now for a token without one."""
        expires_at = identity.expires_at if identity.expires_at is not None else now + default_ttl
        claims = {"sub": identity.user_id, "exp": expires_at, "scope": EVENTS_SCOPE}
        return jwt.encode(claims, self._secret, algorithm="HS256"), expires_at

    def _identity(self, token: str) -> Identity:
        known = self._verified.get(token)
        if known is not None:
            if not known.expired(time.time()):
                return known
            del self._verified[token]
        identity = self._decode(token, time.time())
        if len(self._verified) >= CACHE_SIZE:
            self._verified.clear()  # crude but bounded; a full cache only costs re-verification
        self._verified[token] = identity
        return identity

    def _decode(self, token: str, now: float) -> Identity:
        try:
            # algorithms is pinned: accepting the token's own "alg" would allow "none" and key confusion.
            # exp and nbf are checked below, not by PyJWT, which compares whole seconds (int(exp)): one
            # comparison, the cache's too, decides when a token stops being accepted.
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                options={"require": ["sub"], "verify_exp": False, "verify_nbf": False},
            )
        except jwt.PyJWTError:  # InvalidTokenError and key errors alike: never a 500 for a bad token
            raise Unauthorized(_REFUSED) from None
        sub = claims.get("sub")
        # Control characters (NUL above all: PostgreSQL text cannot hold it) make no usable user id.
        if not isinstance(sub, str) or not 1 <= len(sub) <= MAX_USER_ID or not sub.isprintable():
            raise Unauthorized("The bearer token has no usable subject.")
        times = {name: _numeric_date(claims, name) for name in _TIME_CLAIMS}
        if self._require_exp and times["exp"] is None:
            raise Unauthorized("The bearer token has no expiry (exp); this server accepts only tokens that expire.")
        nbf = times["nbf"]
        if nbf is not None and now < nbf:
            raise Unauthorized(_REFUSED)  # not valid yet, so never remembered as valid either
        identity = Identity(sub, times["exp"], events_only=claims.get("scope") == EVENTS_SCOPE)
        if identity.expired(now):
            raise Unauthorized(_REFUSED)
        return identity


def _numeric_date(claims: dict[str, object], name: str) -> float | None:
    """The claim as seconds since the epoch, None when absent; a string, a boolean, or a number no float
    holds is a malformed token (a string `exp` accepted once and remembered without it never expired)."""
    if name not in claims:
        return None
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized(_REFUSED)
    try:
        seconds = float(value)
    except OverflowError:  # an int beyond float range
        raise Unauthorized(_REFUSED) from None
    if not math.isfinite(seconds):  # Python's JSON parser reads NaN and Infinity
        raise Unauthorized(_REFUSED)
    return seconds


def issue_token(secret: str, user_id: str, ttl_seconds: int | None) -> str:
    """A token for `user_id` that expires `ttl_seconds` from now; None makes one that never expires (the
    test harness and benchmarks use that; `threadstore token` always sets a ttl)."""
    now = int(time.time())
    claims: dict[str, object] = {"sub": user_id, "iat": now}
    if ttl_seconds is not None:
        claims["exp"] = now + ttl_seconds
    return jwt.encode(claims, secret, algorithm="HS256")
