"""How a row's search terms are stored: one column type, rendered per database.

A message's and a thread title's terms (folded and split by `search/text.py`, the same for both databases) are
written with the row, in the statement that writes its text, so the index can never be out of step with the
data nor outlive a rolled-back write:

- PostgreSQL: a `tsvector` column with a GIN index. The value is a tsvector *literal* (the terms as given,
  never parsed again by a text search configuration), with positions for phrases, plus the owner's term
  (`#` and a hash of the user id: no folded term has a `#`), so a search intersects the owner's posting list
  with the words' in the index instead of filtering every user's matches.
- SQLite: the terms separated by spaces in a text column; triggers (migration 0008) keep an FTS5 table with
  the `ascii` tokenizer in step, which splits at the spaces and keeps every other character of a term as it is.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Text
from sqlalchemy.dialects.postgresql import TSVECTOR
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# PostgreSQL's bounds: positions run to 16,383, a lexeme keeps at most 256 of them, a tsvector holds at most
# 1 MB. Rendered within them, so no text can fail its write; and both databases are given the same bounds, so
# the same query finds the same threads on both (docs/api.md "Search"): an occurrence past them is a word but
# starts or continues no phrase, and the distinct words past 1 MB are not indexed.
MAX_POSITION = 16_383
MAX_POSITIONS = 256
_MAX_TSVECTOR_BYTES = 1_000_000
# SQLite: a token no query can hold (a term has only letters, digits and marks; this is a format character),
# written where PostgreSQL keeps no position, so that nothing is adjacent there on SQLite either.
NO_POSITION = "\u2063"


class IndexedTerms(NamedTuple):
    """What a row's search column holds: its owner and its text's terms, in order."""

    owner: str
    terms: tuple[str, ...]


def owner_term(user_id: str) -> str:
    """PostgreSQL: the term every indexed row of `user_id` carries."""
    return "#" + hashlib.blake2b(user_id.encode(), digest_size=8).hexdigest()


def _bounded(terms: tuple[str, ...]) -> tuple[dict[str, list[int]], list[str]]:
    """The terms within PostgreSQL's bounds: each lexeme's positions (empty: a word with no position), and the
    same as SQLite tokens (NO_POSITION around an occurrence without a position, in place of a dropped one)."""
    positions: dict[str, list[int]] = {}
    tokens: list[str] = []
    size = 0
    for index, term in enumerate(terms, start=1):
        kept = positions.get(term)
        if kept is None:
            cost = len(term.encode()) + 8  # the lexeme's entry, its length word and alignment
            if size + cost > _MAX_TSVECTOR_BYTES:
                tokens.append(NO_POSITION)
                continue
            size += cost
            positions[term] = kept = []
        if index <= MAX_POSITION and len(kept) < MAX_POSITIONS and size + 2 <= _MAX_TSVECTOR_BYTES:
            kept.append(index)
            size += 2
            tokens.append(term)
        else:
            tokens += [NO_POSITION, term, NO_POSITION]
    return positions, tokens


def tsvector_literal(value: IndexedTerms) -> str:
    positions, _ = _bounded(value.terms)
    # A term has only letters, digits and marks: nothing to escape inside the quotes.
    lexemes = [f"'{term}':{','.join(map(str, at))}" if at else f"'{term}'" for term, at in positions.items()]
    return " ".join([f"'{owner_term(value.owner)}'", *lexemes])


def sqlite_terms(value: IndexedTerms) -> str:
    return " ".join(_bounded(value.terms)[1])


class SearchTerms(TypeDecorator[IndexedTerms]):
    """A row's search terms: `tsvector` on PostgreSQL, space-separated text on SQLite. Written only (a search
    reads it in SQL); reads return what the driver gives."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TSVECTOR())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: IndexedTerms | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return tsvector_literal(value)
        return sqlite_terms(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return value


def sqlite_rank(terms: str | None, groups_json: str) -> float:
    """SQLite's relevance of one indexed text (`ts_search_rank`, registered on each connection): for each group
    of the query, 1 + log of its terms' occurrences, over 1 + log of the text's length in terms; a number that
    depends on this text alone. (FTS5's bm25 weighs terms by how rare they are in the whole table: every user's
    text would move one user's ranking.) PostgreSQL ranks with ts_rank, also of the text alone."""
    if not terms:
        return 0.0
    words = terms.split(" ")
    counts = Counter(words)
    score = 0.0
    for group_terms, prefix in _groups(groups_json):
        found = sum(counts[term] for term in group_terms[:-1])
        last = group_terms[-1]
        found += sum(n for word, n in counts.items() if word.startswith(last)) if prefix else counts[last]
        if found:
            score += 1.0 + math.log(found)
    return score / (1.0 + math.log(len(words)))


@lru_cache(maxsize=64)
def _groups(groups_json: str) -> tuple[tuple[tuple[str, ...], bool], ...]:
    """A query's groups, parsed once for all the rows it ranks."""
    return tuple((tuple(terms), bool(prefix)) for terms, prefix in json.loads(groups_json))
