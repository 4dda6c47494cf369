"""Turning a model's free-form answer into a usable title (or rejecting it)."""

from __future__ import annotations

import re
import unicodedata

# Models wrap titles in every kind of quote, including typographic and guillemets.
_QUOTES = "\"'`\u201c\u201d\u2018\u2019\u00ab\u00bb\u201e\u201f\u2039\u203a"
# Only a period-like ending is noise; "?" and "!" can belong to a title ("Is coffee bad for you?").
_TRAILING_NOISE = ".…,;:"
_LABEL = re.compile(
    r"^(?:\*\*)?(?:suggested |conversation |chat )?title(?:\*\*)?\s*[:\uff1a]\s*(?:\*\*)?", re.IGNORECASE
)
_BARE_LABEL = re.compile(r"^[\W_]*(?:suggested |conversation |chat )?title[\W_]*$", re.IGNORECASE)
_HEADING = re.compile(r"^#{1,6}\s+")


def truncate_title(text: str, max_words: int, max_chars: int) -> str:
    """Cuts at a word boundary; a single word longer than `max_chars` is the only thing ever cut mid-word."""
    words = text.split()[:max_words]
    while len(words) > 1 and len(" ".join(words)) > max_chars:
        words.pop()
    return " ".join(words)[:max_chars].rstrip()


def has_alnum(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


def clean_title(raw: str, *, max_words: int = 8, max_chars: int = 80) -> str | None:
    """The title contained in an LLM answer, or None when the answer holds nothing usable."""
    if max_words < 1 or max_chars < 1:
        raise ValueError("max_words and max_chars must be at least 1")
    lines = [line for line in raw.splitlines() if line.strip()]
    # A bare "Title:" line means the model put the title on the next line.
    if lines and _BARE_LABEL.match(_without_controls(lines[0]).strip()):
        lines = lines[1:]
    if not lines:
        return None
    title = _strip_wrappers(truncate_title(_clean_line(lines[0]), max_words, max_chars))
    return title if has_alnum(title) else None


def _clean_line(line: str) -> str:
    text = _without_controls(line)
    previous = None
    while text != previous:  # wrappers nest in any order: '"Title: Lisbon trip."', '**"Lisbon trip"**'
        previous = text
        text = _strip_wrappers(text)
        text = _HEADING.sub("", text)
        text = _LABEL.sub("", text)
    return " ".join(text.split())


def _strip_wrappers(text: str) -> str:
    text = text.strip()
    previous = None
    while text != previous:
        previous = text
        text = text.strip().rstrip(_TRAILING_NOISE).strip()
        if len(text) >= 4 and text.startswith("**") and text.endswith("**"):
            text = text[2:-2]
        text = _unquote(text)
    return text


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        return text[1:-1]
    # A lone quote at one end is a leftover (e.g. an answer cut by max_tokens); one that has a partner
    # inside the text quotes a word on purpose ('"Dune" book club') and stays.
    for edge, rest in ((text[:1], text[1:]), (text[-1:], text[:-1])):
        if edge and edge in _QUOTES and not any(ch in _QUOTES for ch in rest):
            return rest
    return text


def _without_controls(text: str) -> str:
    # Tabs and other separators become spaces so words do not run together once controls are gone.
    return "".join(
        " " if ch.isspace() else ch for ch in text if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cf")
    )
