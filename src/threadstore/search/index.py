"""What a write puts in the search index: the terms of a text, for its owner. Every write of a message's text
or a thread's title calls this and writes the result in the same statement (db/search_terms.py), so the index
is never out of step with what it indexes.

Folding is the costly part (a maximum-size message: tens of milliseconds, hundreds in CJK), so a text that
arrives whole is folded as its request is parsed (`folded`, messages/schemas.py), before the unit of work that
stores it takes a connection (on SQLite, the write lock); `owned` then only attaches the owner."""

from __future__ import annotations

from threadstore.db.search_terms import IndexedTerms
from threadstore.search.text import term_texts


def folded(text: str) -> tuple[str, ...]:
    """The terms of `text`, folded and split (search/text.py)."""
    return tuple(term_texts(text))


def owned(user_id: str, terms: tuple[str, ...]) -> IndexedTerms:
    """The search column's value for terms already folded."""
    return IndexedTerms(user_id, terms)


def indexed(user_id: str, text: str | None) -> IndexedTerms | None:
    """The search column's value for `text` (None: no text, nothing indexed)."""
    if text is None:
        return None
    return owned(user_id, folded(text))
