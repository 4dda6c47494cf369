"""Server-chosen ids: opaque and unguessable (128 random bits), so knowing one id reveals no other."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(16)}"


def id_pattern(prefix: str) -> str:
    """What new_id makes, as a regular expression (16 random bytes are 22 base64url characters)."""
    return f"^{prefix}_[A-Za-z0-9_-]{{22}}$"
