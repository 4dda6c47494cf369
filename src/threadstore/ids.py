"""Server-chosen ids: opaque and unguessable (128 random bits), so knowing one id reveals no other."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(16)}"
