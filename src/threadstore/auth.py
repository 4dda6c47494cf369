"""Bearer JWT authentication: HS256 with the configured secret; `sub` is the user id."""

from __future__ import annotations

import time

import jwt

from threadstore.errors import Unauthorized

MAX_USER_ID = 255


CACHE_SIZE = 10_000


class TokenVerifier:
    """Verifies bearer tokens, remembering verified ones: clients send the same token on every request and
    an HMAC check plus JSON decoding per request is a measurable share of a fast read (docs/performance.md).
    A remembered token is still refused from the moment its `exp` passes."""

    def __init__(self, secret: str) -> None:
        self._secret = secret
        self._verified: dict[str, tuple[str, float | None]] = {}

    def user_id(self, authorization: str | None) -> str:
        if not authorization:
            raise Unauthorized()
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized()
        known = self._verified.get(token)
        if known is not None:
            sub, exp = known
            if exp is None or time.time() < exp:
                return sub
            del self._verified[token]
        sub, exp = self._verify(token)
        if len(self._verified) >= CACHE_SIZE:
            self._verified.clear()  # crude but bounded; a full cache only costs re-verification
        self._verified[token] = (sub, exp)
        return sub

    def _verify(self, token: str) -> tuple[str, float | None]:
        try:
            # algorithms is pinned: accepting the token's own "alg" would allow "none" and key confusion.
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], options={"require": ["sub"]})
        except jwt.PyJWTError:  # InvalidTokenError and key errors alike: never a 500 for a bad token
            raise Unauthorized("The bearer token is missing, malformed, expired or not validly signed.") from None
        sub = claims.get("sub")
        # Control characters (NUL above all: PostgreSQL text cannot hold it) make no usable user id.
        if not isinstance(sub, str) or not 1 <= len(sub) <= MAX_USER_ID or not sub.isprintable():
            raise Unauthorized("The bearer token has no usable subject.")
        exp = claims.get("exp")
        return sub, float(exp) if isinstance(exp, int | float) else None


def issue_token(secret: str, user_id: str, ttl_seconds: int | None) -> str:
    now = int(time.time())
    claims: dict[str, object] = {"sub": user_id, "iat": now}
    if ttl_seconds:
        claims["exp"] = now + ttl_seconds
    return jwt.encode(claims, secret, algorithm="HS256")
