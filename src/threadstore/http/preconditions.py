"""Conditional request headers: `If-Match` (412 when stale) and `If-None-Match` (304 when current)."""

from __future__ import annotations

from threadstore.errors import PreconditionFailed

ANY = -1


def parse_if_match(value: str | None) -> int | None:
    """The version named by If-Match; ANY for `*`; None when absent. A malformed value can never match."""
    if value is None:
        return None
    value = value.strip()
    if value == "*":
        return ANY
    tag = value.removeprefix("W/")  # If-Match uses strong comparison: a weak tag never matches
    if value.startswith("W/") or not (len(tag) >= 2 and tag[0] == tag[-1] == '"' and tag[1:-1].isdigit()):
        raise PreconditionFailed('If-Match must name the current version as a strong ETag, e.g. "3".')
    return int(tag[1:-1])


def none_match(value: str | None, version: int) -> bool:
    """True when If-None-Match names the current version (weak comparison, per RFC 9110)."""
    if value is None:
        return False
    current = f'"{version}"'
    for candidate in value.split(","):
        candidate = candidate.strip()
        if candidate == "*" or candidate.removeprefix("W/") == current:
            return True
    return False
