"""A match's snippet: at most SNIPPET_CHARS characters of the text around the query's words, each word that
matched wrapped in `<mark>…</mark>` and every other `<`, `>`, `&` escaped, so a page can insert it as it is
(API.md "Search"). The words are found with the index's own folding (search/text.py), in the original text."""

from __future__ import annotations

import html

from threadstore.search.text import Query, terms

SNIPPET_CHARS = 200
_BEFORE = 40  # characters of context kept before the first matched word, when there is room


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def snippet(text: str, query: Query) -> str:
    spans = _merged([(t.start, t.end) for t in terms(text) if query.matches_term(t.text)])
    if len(text) <= SNIPPET_CHARS:
        start, end = 0, len(text)
    else:
        start = _best_start(text, spans)
        end = min(start + SNIPPET_CHARS, len(text))
    pieces: list[str] = []
    at = start
    for lo, hi in spans:
        if hi <= start or lo >= end:
            continue
        lo, hi = max(lo, start), min(hi, end)
        pieces.append(_escape(text[at:lo]))
        pieces.append(f"<mark>{_escape(text[lo:hi])}</mark>")
        at = hi
    pieces.append(_escape(text[at:end]))
    return "".join(pieces).strip()


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans (the pairs of a CJK run overlap) made one."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _best_start(text: str, spans: list[tuple[int, int]]) -> int:
    """Where the window that holds the most matched words starts (with some context before the first)."""
    if not spans:
        return 0
    best, best_count = spans[0][0], 0
    for i, (lo, _) in enumerate(spans[:200]):
        count = sum(1 for s_lo, s_hi in spans[i:] if s_hi <= lo + SNIPPET_CHARS - _BEFORE)
        if count > best_count:
            best, best_count = lo, count
    start = max(0, min(best - _BEFORE, len(text) - SNIPPET_CHARS))
    # Begin at a word's start when one is near: not in the middle of a word of the context.
    space = text.find(" ", start, best)
    if start > 0 and 0 <= space < best and space - start < 20:
        start = space + 1
    return start
