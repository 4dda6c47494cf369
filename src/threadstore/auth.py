"""Bearer JWT authentication: HS256 with the configured secret; `sub` is the user id."""

from __future__ import annotations

import time

import jwt

from threadstore.errors import Unauthorized

MAX_USER_ID = 255


class TokenVerifier:
    def __init__(self, secret: str) -> None:
        self._secret = secret

    def user_id(self, authorization: str | None) -> str:
        if not authorization:
            raise Unauthorized()
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise Unauthorized()
        try:
            # algorithms is pinned: accepting the token's own "alg" would allow "none" and key confusion.
            claims = jwt.decode(token, self._secret, algorithms=["HS256"], options={"require": ["sub"]})
        except jwt.InvalidTokenError:
            raise Unauthorized("The bearer token is missing, malformed, expired or not validly signed.") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not 1 <= len(sub) <= MAX_USER_ID:
            raise Unauthorized("The bearer token has no usable subject.")
        return sub


def issue_token(secret: str, user_id: str, ttl_seconds: int | None) -> str:
    now = int(time.time())
    claims: dict[str, object] = {"sub": user_id, "iat": now}
    if ttl_seconds:
        claims["exp"] = now + ttl_seconds
    return jwt.encode(claims, secret, algorithm="HS256")
