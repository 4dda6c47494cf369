"""Cleaning what a model answers into a title, or rejecting it."""

from __future__ import annotations

import pytest

from threadstore.titles import clean_title
from threadstore.titles.cleaning import truncate_title


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Lisbon family trip", "Lisbon family trip"),
        ("  Lisbon family trip  ", "Lisbon family trip"),
        ('"Lisbon family trip"', "Lisbon family trip"),
        ("'Lisbon family trip'", "Lisbon family trip"),
        ("\u201cLisbon family trip\u201d", "Lisbon family trip"),
        ("\u2018Lisbon family trip\u2019", "Lisbon family trip"),
        ("\u00abVoyage \u00e0 Lisbonne\u00bb", "Voyage \u00e0 Lisbonne"),
        ("`Lisbon family trip`", "Lisbon family trip"),
        ("Lisbon family trip.", "Lisbon family trip"),
        ('"Lisbon family trip."', "Lisbon family trip"),
        ('"Lisbon family trip".', "Lisbon family trip"),
        ("Title: Lisbon family trip", "Lisbon family trip"),
        ("title - no label here", "title - no label here"),
        ('TITLE: "Lisbon family trip"', "Lisbon family trip"),
        ('"Title: Lisbon family trip."', "Lisbon family trip"),
        ("**Title:** Lisbon family trip", "Lisbon family trip"),
        ("**Lisbon family trip**", "Lisbon family trip"),
        ("# Lisbon family trip", "Lisbon family trip"),
        ("Title:\nLisbon family trip", "Lisbon family trip"),
        ("\n\n  Lisbon family trip\nThis title captures the topic.", "Lisbon family trip"),
        ("Lisbon\tfamily\u200b   trip\x07", "Lisbon family trip"),
        ("Is coffee bad for you?", "Is coffee bad for you?"),
        ('"Dune" book club', '"Dune" book club'),
        ("Lisbon family trip\u2026", "Lisbon family trip"),
        ('"Lisbon family trip', "Lisbon family trip"),  # cut off by max_tokens
        ("Title IX compliance", "Title IX compliance"),
        ("C# async basics", "C# async basics"),
    ],
)
def test_cleans(raw: str, expected: str) -> None:
    assert clean_title(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "   ",
        "\n\n",
        '""',
        "''",
        "...",
        "?!",
        "Title:",
        '"Title:"',
        "—",
        "\x00\x01",
        "Title:\n\n...",
        "** **",
    ],
)
def test_rejects_empty_or_garbage(raw: str) -> None:
    assert clean_title(raw) is None


def test_cuts_to_max_words() -> None:
    raw = "One two three four five six seven eight nine ten"
    assert clean_title(raw) == "One two three four five six seven eight"
    assert clean_title(raw, max_words=3) == "One two three"


def test_cuts_to_max_chars_at_a_word_boundary() -> None:
    assert clean_title("Planning a family trip to Lisbon", max_chars=20) == "Planning a family"
    assert clean_title("Supercalifragilistic", max_chars=5) == "Super"


def test_no_dangling_punctuation_after_a_cut() -> None:
    assert clean_title("Lisbon, Porto, and Faro in spring", max_words=2) == "Lisbon, Porto"


def test_rejects_nonsensical_limits() -> None:
    with pytest.raises(ValueError):
        clean_title("x", max_words=0)


@pytest.mark.parametrize(
    ("text", "max_words", "max_chars", "expected"),
    [
        ("a b c", 2, 80, "a b"),
        ("alpha beta gamma", 8, 10, "alpha beta"),
        ("alphabet", 8, 3, "alp"),
        ("  spaced   out  ", 8, 80, "spaced out"),
    ],
)
def test_truncate_title(text: str, max_words: int, max_chars: int, expected: str) -> None:
    assert truncate_title(text, max_words, max_chars) == expected
