"""Characters that make text display as something other than what it holds.

Titles and metadata keys are labels a person reads and trusts: "invoice\u202efdp.exe" displays as
"invoiceexe.pdf", and "topic" and "to\u200bpic" look alike but are two keys. Refused there (docs/api.md):

- the bidirectional controls (Unicode's Bidi_Control): they reorder the text displayed around them;
- invisible characters that have no job in text: zero-width space, word joiner, the invisible maths
  operators, the byte-order mark, the deprecated format controls, interlinear annotation marks (which hide
  what they annotate), and the tag characters (invisible copies of ASCII, used to smuggle hidden text past
  a reader, to a language model for one) except inside a subdivision flag emoji, which is made of them.

Invisible characters that real text needs stay allowed: the zero-width joiner and non-joiner (Persian,
Indic scripts, emoji sequences), the soft hyphen, variation selectors, the Mongolian and Arabic marks.
"""

from __future__ import annotations

import re

_BIDI_CONTROLS = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_INVISIBLE = "\u200b\u2060-\u2064\u206a-\u206f\ufeff\ufff9-\ufffb\U000e0000-\U000e007f"
# 🏴 + a subdivision code (region letters, then 1-4 letters or digits) in tag characters + CANCEL TAG.
_FLAG = "\U0001f3f4[\U000e0061-\U000e007a]{2}[\U000e0030-\U000e0039\U000e0061-\U000e007a]{1,4}\U000e007f"
# Those of them in the Basic Multilingual Plane, for the OpenAPI document's patterns (limits.py); the tag
# characters, astral and allowed inside a flag, are said in words there.
BMP_CHARACTERS = frozenset(
    chr(c)
    for c in (0x061C, 0x200B, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2060, 0x2065), *range(0x2066, 0x2070))
) | frozenset(chr(c) for c in (0xFEFF, 0xFFF9, 0xFFFA, 0xFFFB))
_ANY = re.compile(f"[{_BIDI_CONTROLS}{_INVISIBLE}]")
_SCAN = re.compile(f"({_FLAG})|[{_BIDI_CONTROLS}{_INVISIBLE}]")


def find(text: str) -> str | None:
    """The first disguising character of `text`, or None."""
    # Every label is checked, and nearly all hold none: ASCII (a flag kept by CPython) cannot, and a plain
    # character-class search is much cheaper than the scan that skips flags.
    if text.isascii() or _ANY.search(text) is None:
        return None
    for match in _SCAN.finditer(text):
        if match.group(1) is None:
            return match.group()
    return None


def strip(text: str) -> str:
    """`text` without its disguising characters."""
    return _SCAN.sub(lambda match: match.group(1) or "", text)


def describe(character: str) -> str:
    return f"U+{ord(character):04X}"
