"""The expiry of a request's bearer token, for a response that lasts longer than the request's check of it
(an event stream ends when its token expires)."""

from __future__ import annotations

from typing import Any

import jwt


def bearer_expiry(authorization: str | None) -> float | None:
    """The `exp` of the bearer token in `authorization` as a Unix time; None when it has none.

    Only for a token that the request's authentication (`CurrentUser`) has verified: its claims are read here,
    not checked again."""
    _, _, token = (authorization or "").partition(" ")
    try:
        exp: Any = jwt.decode(token.strip(), options={"verify_signature": False}).get("exp")
    except jwt.PyJWTError:
        return None
    if isinstance(exp, bool):
        return None
    try:
        return float(exp)  # as PyJWT read it when it verified the token (a numeric string included)
    except (TypeError, ValueError):
        return None
