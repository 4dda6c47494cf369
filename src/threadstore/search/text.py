"""Text as search sees it: terms with their places in the original text, the same for both databases.

Each database's own text search parses and folds text its own way (PostgreSQL's parser by locale, SQLite's
tokenizers by their Unicode tables), so the two would find different threads. Here Python does all of it and the
databases only store and intersect the terms given: PostgreSQL as a `tsvector` literal, SQLite as
space-separated terms under FTS5's `ascii` tokenizer, which keeps every non-ASCII character as it is.

- A word is a run of letters, digits and combining marks (Unicode categories L, N, M): `foo_bar`, `C++` and
  `e-mail` split where the run ends.
- Folding, per character: NFKC (full-width forms, ligatures, `①`), case folding (`ß` → `ss`), letters with a
  stroke and the ligatures `æ`, `œ` as their base letters (`ø` → `o`, `œ` → `oe`), then the accents dropped
  (NFKD without its nonspacing marks): `Café` and `CAFE` are both `cafe`.
- Scripts written without spaces (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar) have no words to split
  on: a run of them is indexed as its overlapping pairs of characters (`東京都` → `東京`, `京都`), so a query finds
  any contiguous run of at least 2 characters of it as a phrase of pairs. Their marks are kept (a voicing mark
  or a Thai vowel changes the word).
- A term longer than MAX_TERM characters is cut there, in the text and in the query alike.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from itertools import pairwise
from typing import NamedTuple

MAX_TERM = 64

_SPACELESS = (
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3005, 0x3007),  # iteration mark, closing mark, ideographic zero
    (0x3021, 0x3029),  # Hangzhou numerals
    (0x3031, 0x3035),  # kana repeat marks
    (0x3038, 0x303C),
    (0x3040, 0x30FF),  # Hiragana, Katakana (with the prolonged sound mark ー)
    (0x31F0, 0x31FF),  # Katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width Katakana
    (0x20000, 0x323AF),  # CJK extensions B to H, compatibility supplement
)

_SEPARATOR, _WORD, _SPACELESS_CHAR = 0, 1, 2
# Letters with a stroke or a ligature that no Unicode decomposition takes apart, folded as their base letters
# (as PostgreSQL's unaccent does): `Łódź` is found by `lodz`, `œuf` by `oeuf`.
_LETTERS = {
    "ø": "o",
    "ł": "l",
    "đ": "d",
    "ð": "d",
    "ħ": "h",
    "ŧ": "t",
    "\u0131": "i",  # dotless i
    "ŀ": "l",
    "ƀ": "b",
    "ɨ": "i",
    "ʉ": "u",
    "œ": "oe",
    "æ": "ae",
    "þ": "th",
}


def _spaceless(code: int) -> bool:
    return any(lo <= code <= hi for lo, hi in _SPACELESS)


@lru_cache(maxsize=65_536)
def _fold(char: str) -> tuple[int, str]:
    """A character's class and what it contributes to a term."""
    category = unicodedata.category(char)
    if category[0] not in "LNM":
        return _SEPARATOR, ""
    if _spaceless(ord(char)):
        return _SPACELESS_CHAR, unicodedata.normalize("NFKC", char).casefold()
    cased = unicodedata.normalize("NFKC", char).casefold()
    folded = unicodedata.normalize("NFKD", _LETTERS.get(cased, cased))
    kept = "".join(c for c in folded if unicodedata.category(c)[0] in "LN" or unicodedata.category(c) == "Mc")
    return _WORD, unicodedata.normalize("NFC", kept)


class Term(NamedTuple):
    """One term of a text: the folded characters, where it stands in the original (start, end), and whether it
    is a pair of a spaceless script."""

    text: str
    start: int
    end: int
    pair: bool = False


# Runs that hold no ASCII separator: ASCII letters and digits, and any non-ASCII character (which the
# per-character path classifies). An ASCII character outside them is punctuation, a space or a control: a
# separator in every case.
_RUN = re.compile(r"[A-Za-z0-9\x80-\U0010FFFF]+")


def terms(text: str) -> list[Term]:
    """The terms of `text` in order. Their positions (1, 2, …) are what phrases are matched on.

    An ASCII run is one word whose folding is lowercasing (NFKC, case folding and accents change nothing else
    in ASCII): most text takes that path, without a Python step per character."""
    found: list[Term] = []
    for match in _RUN.finditer(text):
        run = match.group()
        if run.isascii():
            found.append(Term(run.lower()[:MAX_TERM], match.start(), match.end()))
        else:
            found += per_character(run, match.start())
    return found


def per_character(text: str, offset: int = 0) -> list[Term]:
    """`terms` of `text`, a character at a time (offsets moved by `offset`)."""
    found: list[Term] = []
    word: list[str] = []
    word_start = 0
    run: list[tuple[str, int]] = []  # a spaceless run: (folded character, its index in text)

    def end_word(at: int) -> None:
        folded = "".join(word)[:MAX_TERM]
        if folded:
            found.append(Term(folded, offset + word_start, offset + at))
        word.clear()

    def end_run() -> None:
        for (first, at), (second, _) in pairwise(run):
            found.append(Term((first + second)[:MAX_TERM], offset + at, offset + at + 2, pair=True))
        run.clear()

    for index, char in enumerate(text):
        kind, folded = _fold(char)
        if kind != _WORD and word:
            end_word(index)
        if kind != _SPACELESS_CHAR and run:
            end_run()
        if kind == _WORD:
            if not word:
                word_start = index
            word.append(folded)
        elif kind == _SPACELESS_CHAR:
            run.append((folded, index))
    if word:
        end_word(len(text))
    if run:
        end_run()
    return found


def term_texts(text: str) -> list[str]:
    return [term.text for term in terms(text)]


@dataclass(frozen=True)
class Group:
    """What one word or quoted phrase of a query asks for: its terms in order (one term: a word), the last
    matched as a prefix when `prefix`."""

    terms: tuple[str, ...]
    prefix: bool = False


@dataclass(frozen=True)
class Query:
    """A parsed `q`: every group of `required` in the same text; none of `excluded` anywhere in the thread."""

    required: tuple[Group, ...]
    excluded: tuple[Group, ...]

    @property
    def empty(self) -> bool:
        """No word to look for: the answer is no result (API.md: a query of only exclusions, or of no word)."""
        return not self.required

    def matches_term(self, term: str) -> bool:
        """Whether a term of a text is one this query looks for (for marking a snippet)."""
        for group in self.required:
            if term in group.terms[:-1] or term == group.terms[-1]:
                return True
            if group.prefix and term.startswith(group.terms[-1]):
                return True
        return False


def _pieces(q: str) -> list[tuple[str, bool, bool]]:
    """`q` split into (text, quoted, negated). Quotes pair from the left; an unclosed one runs to the end."""
    pieces: list[tuple[str, bool, bool]] = []
    i, n = 0, len(q)
    while i < n:
        if q[i].isspace():
            i += 1
            continue
        negated = q[i] == "-" and i + 1 < n and not q[i + 1].isspace()
        j = i + 1 if negated else i
        if j < n and q[j] == '"':
            close = q.find('"', j + 1)
            end = n if close < 0 else close
            pieces.append((q[j + 1 : end], True, negated))
            i = end + 1
            continue
        end = j
        while end < n and not q[end].isspace() and q[end] != '"':
            end += 1
        pieces.append((q[j:end], False, negated))
        i = end
    return pieces


def parse(q: str) -> Query:
    """The query language of API.md "Search": all words, `"phrases"`, `-exclusions`, the last word a prefix."""
    required: list[Group] = []
    excluded: list[Group] = []
    last_open: tuple[int, bool] | None = None  # the last piece's group index, if it may be a prefix
    for text, quoted, negated in _pieces(q):
        found = terms(text)
        if not found:
            continue
        group = Group(tuple(term.text for term in found))
        if negated:
            excluded.append(group)
            last_open = None
        else:
            required.append(group)
            last = found[-1]
            last_open = (len(required) - 1, not quoted and not last.pair and len(last.text) >= 2)
    if last_open is not None and last_open[1]:
        index = last_open[0]
        required[index] = Group(required[index].terms, prefix=True)
    return Query(_distinct(required), _distinct(excluded))


def _distinct(groups: list[Group]) -> tuple[Group, ...]:
    return tuple(dict.fromkeys(groups))
