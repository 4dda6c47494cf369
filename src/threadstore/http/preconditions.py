"""Conditional request headers: `If-Match` (412 when stale) and `If-None-Match` (304 when current)."""

from __future__ import annotations

import re

from threadstore.errors import PreconditionFailed

ANY = -1
# What If-Match can match: `*` or a version as a strong entity tag (ASCII digits; versions are 32-bit integers,
# so 18 digits are plenty). A weak tag (W/"3") never matches under strong comparison, nor does anything else.
IF_MATCH_PATTERN = r'^(\*|"[0-9]{1,18}")$'
_IF_MATCH = re.compile(IF_MATCH_PATTERN)


def parse_if_match(value: str | None) -> int | None:
    """The version named by If-Match; ANY for `*`; None when absent. Any other value can never match: 412."""
    if value is None:
        return None
    value = value.strip()
    if not _IF_MATCH.fullmatch(value):
        raise PreconditionFailed('If-Match must name the current version as a strong ETag, e.g. "3".')
    return ANY if value == "*" else int(value[1:-1])


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
