"""Content negotiation by the `Accept` header (RFC 9110, section 12.5.1), for operations with more than one
representation of their answer.

The first representation is the default: another is chosen only when the client prefers it strictly (a higher
quality). A tie, an absent or unreadable header, or a header that accepts none of them answers the default,
never 406: a client that did not ask for anything else keeps getting what it always got.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# A quality value: 0 to 1 with at most three decimals (RFC 9110, section 12.4.2).
_QVALUE = re.compile(r"^(?:0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?)$")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def choose(accept: str | None, offered: Sequence[str]) -> str:
    """The representation of `offered` (media types, the default first) that `accept` prefers."""
    ranges = _ranges(accept) if accept else []
    if not ranges:
        return offered[0]
    best, best_q = offered[0], _quality(ranges, offered[0])
    for media_type in offered[1:]:
        q = _quality(ranges, media_type)
        if q > best_q:
            best, best_q = media_type, q
    return best


def _quality(ranges: list[tuple[str, str, float]], media_type: str) -> float:
    """The quality the most specific matching range gives `media_type` (`type/subtype` over `type/*` over
    `*/*`); 0 when none matches."""
    kind, subtype = media_type.split("/")
    best_specificity, q = -1, 0.0
    for range_type, range_subtype, range_q in ranges:
        if range_type == kind and range_subtype == subtype:
            specificity = 2
        elif range_type == kind and range_subtype == "*":
            specificity = 1
        elif range_type == "*" and range_subtype == "*":
            specificity = 0
        else:
            continue
        # Two ranges of the same specificity (`a/b;q=0.2, a/b`): the higher quality counts.
        if specificity > best_specificity or (specificity == best_specificity and range_q > q):
            best_specificity, q = specificity, range_q
    return q


def _ranges(accept: str) -> list[tuple[str, str, float]]:
    """(type, subtype, quality) of each readable media range; an unreadable one is skipped, as if absent."""
    ranges = []
    for element in accept.split(","):
        media_range, *parameters = element.split(";")
        kind, slash, subtype = media_range.strip().lower().partition("/")
        if not slash or not _TOKEN.match(kind) or not _TOKEN.match(subtype) or (kind == "*" and subtype != "*"):
            continue
        q: float | None = 1.0
        for parameter in parameters:
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                # The weight ends the media range's parameters; what follows are accept-extensions.
                value = value.strip()
                q = float(value) if _QVALUE.match(value) else None
                break
        if q is not None:
            ranges.append((kind, subtype, q))
    return ranges
