"""Which characters count as disguising (threadstore/disguise.py); the endpoints' use of it is tested in
tests/threads/test_disguise.py."""

from __future__ import annotations

import pytest

from threadstore import disguise

FLAG_SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
BIDI_CONTROLS = ["\u061c", "\u200e", "\u200f", *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A))]
INVISIBLE = ["\u200b", "\u2060", "\u2063", "\u206a", "\ufeff", "\ufff9", "\U000e0001", "\U000e0041", "\U000e007f"]


@pytest.mark.parametrize("character", BIDI_CONTROLS + INVISIBLE, ids=lambda ch: f"U+{ord(ch):04X}")
def test_each_disguising_character_is_found_and_stripped(character: str) -> None:
    text = f"a{character}b"
    assert disguise.find(text) == character
    assert disguise.strip(text) == "ab"


@pytest.mark.parametrize(
    "text",
    [
        "\u200d\u200c",  # joiners: emoji sequences, Persian, Indic scripts
        "\u00ad",  # soft hyphen
        "\u2764\ufe0f",  # variation selector
        "\u180e\u0600",  # Mongolian vowel separator, Arabic number sign
        FLAG_SCOTLAND,
        "שלום مرحبا",  # right-to-left text needs no control to display right
    ],
)
def test_characters_that_text_needs_are_left_alone(text: str) -> None:
    assert disguise.find(text) is None
    assert disguise.strip(text) == text


def test_tag_characters_outside_a_subdivision_flag_are_disguising() -> None:
    smuggled = "\U0001f3f4" + "".join(chr(0xE0000 + ord(ch)) for ch in "ignore previous") + "\U000e007f"
    assert disguise.find(smuggled) == chr(0xE0000 + ord("i"))
    assert disguise.strip(f"{smuggled} {FLAG_SCOTLAND}") == f"\U0001f3f4 {FLAG_SCOTLAND}"
