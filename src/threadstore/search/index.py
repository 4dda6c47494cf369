"""What a write puts in the search index: the terms of a text, for its owner. Every write of a message's text
or a thread's title calls this and writes the result in the same statement (db/search_terms.py), so the index
is never out of step with what it indexes."""

from __future__ import annotations

from threadstore.db.search_terms import IndexedTerms
from threadstore.search.text import term_texts


def indexed(user_id: str, text: str | None) -> IndexedTerms | None:
    """The search column's value for `text` (None: no text, nothing indexed)."""
    if text is None:
        return None
    return IndexedTerms(user_id, tuple(term_texts(text)))
