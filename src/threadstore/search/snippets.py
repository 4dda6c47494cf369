"""A match's snippet: at most SNIPPET_CHARS characters of the text around the query's words, each occurrence
that matched wrapped in `<mark>…</mark>` and every other `<`, `>`, `&` escaped, so a page can insert it as it is
(API.md "Search"). The words are found with the index's own folding (search/text.py), in the original text:
a word of `q` where it occurs, a phrase only where its words occur together, in order.

Cost: folding is Python, per character, so only the first SCAN_CHARS characters of a text are looked at (a
match further into a very long message shows the text's beginning, unmarked). A page's snippets are made after
its unit of work has returned its connection."""

from __future__ import annotations

import html
from bisect import bisect_right

from threadstore.search.text import Query, Term, terms

SNIPPET_CHARS = 200
SCAN_CHARS = 50_000
_BEFORE = 40  # characters of context before the first matched word, when there is room


def snippet(text: str, query: Query) -> str:
    found = terms(text[:SCAN_CHARS])
    spans = _merged(_matched(found, query))
    start, end = _window(text, found, spans)
    pieces: list[str] = []
    at = start
    for lo, hi in spans:
        if lo < start or hi > end:
            continue
        pieces.append(_escape(text[at:lo]))
        pieces.append(f"<mark>{_escape(text[lo:hi])}</mark>")
        at = hi
    pieces.append(_escape(text[at:end]))
    return "".join(pieces).strip()


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _matched(found: list[Term], query: Query) -> list[tuple[int, int]]:
    """The (start, end) in the text of every term that is part of an occurrence of a group of the query."""
    at: dict[str, list[int]] = {}
    for index, term in enumerate(found):
        at.setdefault(term.text, []).append(index)
    spans: list[tuple[int, int]] = []
    for group in query.required:
        first, n = group.terms[0], len(group.terms)
        if n == 1 and group.prefix:
            starts = [i for i, term in enumerate(found) if term.text.startswith(first)]
        else:
            starts = at.get(first, [])
        for i in starts:
            window = found[i : i + n]
            if len(window) < n or any(t.text != g for t, g in zip(window[1:-1], group.terms[1:-1], strict=True)):
                continue
            last = window[-1].text
            if n > 1 and not (last.startswith(group.terms[-1]) if group.prefix else last == group.terms[-1]):
                continue
            spans += [(t.start, t.end) for t in window]
    return spans


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans (a CJK run's pairs overlap) made one; in text order."""
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(spans):
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def _window(text: str, found: list[Term], spans: list[tuple[int, int]]) -> tuple[int, int]:
    """The SNIPPET_CHARS characters holding the most marks, starting a little before the first of them, never
    cutting a word at either end when a word boundary is near."""
    if len(text) <= SNIPPET_CHARS:
        return 0, len(text)
    best, best_count, j = 0, 0, 0
    for i, (lo, _) in enumerate(spans):  # two pointers: spans[i:j] fit in a window that starts before spans[i]
        j = max(j, i)
        limit = max(0, lo - _BEFORE) + SNIPPET_CHARS
        while j < len(spans) and spans[j][1] <= limit:
            j += 1
        if j - i > best_count:
            best, best_count = i, j - i
    first = spans[best][0] if spans else 0
    start = max(0, min(first - _BEFORE, len(text) - SNIPPET_CHARS))
    starts = [t.start for t in found]
    # A start inside a word moves to that word's end (not past the first mark).
    k = bisect_right(starts, start) - 1
    if k >= 0 and found[k].start < start < found[k].end <= first:
        start = found[k].end
    end = min(start + SNIPPET_CHARS, len(text))
    k = bisect_right(starts, end) - 1
    if k >= 0 and found[k].start < end < found[k].end and found[k].start > start:
        end = found[k].start
    return start, end
