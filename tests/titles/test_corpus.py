"""The corpus of first messages (corpus.py): what every title must be, exact titles for a subset, and the
table in docs/titles.md being the one the code produces."""

from __future__ import annotations

import random

import pytest

from tests.titles.corpus import DOC, SAMPLES, Sample, doc_with_table
from threadstore.titles import DEFAULT_TITLE, summarize

# Request framing that must not open a title, in the languages the summarizer has framing tables for.
FRAMING = (
    *("can you", "could you", "would you", "please", "help me", "how do i", "i want", "i'd like", "i need"),
    *("kannst du", "könnten sie", "ich möchte", "ich brauche", "bitte", "hilf mir", "wie kann ich"),
    *("pouvez-vous", "peux-tu", "pourriez-vous", "je voudrais", "j'aimerais", "comment puis-je", "écris-moi"),
    *("puedes", "podrías", "quiero", "necesito", "por favor", "cómo puedo", "me puedes"),
)
KINDS = {"coding", "code only", "writing", "travel", "cooking", "health", "maths", "question", "command", "list"}
KINDS |= {"German", "French", "Spanish", "other language", "greeting only", "very short", "very long"}


def _ids(sample: Sample) -> str:
    return f"{sample.kind}: {sample.message[:30]!r}"


def test_the_corpus_is_large_and_varied() -> None:
    assert len(SAMPLES) >= 100
    assert {sample.kind for sample in SAMPLES} >= KINDS
    assert len({sample.message for sample in SAMPLES}) == len(SAMPLES)
    pinned = {sample.kind for sample in SAMPLES if sample.expected is not None}
    assert {"German", "French", "Spanish", "code only", "list"} <= pinned


def _assert_is_a_title(title: str, message: str, max_words: int, max_chars: int) -> None:
    if not any(ch.isalnum() for ch in message):
        assert title == DEFAULT_TITLE  # whatever the limits, as documented
        return
    assert title == title.strip() and title != DEFAULT_TITLE
    assert any(ch.isalnum() for ch in title)
    assert len(title.split()) <= max_words
    assert len(title) <= max_chars
    assert title[-1] not in ".,;:-"


@pytest.mark.parametrize("sample", SAMPLES, ids=_ids)
def test_every_title_is_short_clean_and_stable(sample: Sample) -> None:
    title = summarize(sample.message)

    _assert_is_a_title(title, sample.message, 8, 80)
    _assert_is_a_title(summarize(sample.message, max_words=3, max_chars=24), sample.message, 3, 24)
    assert summarize(sample.message) == title
    if not sample.echo:
        assert not title.casefold().startswith(tuple(f"{opener} " for opener in FRAMING)), title


@pytest.mark.parametrize("sample", [sample for sample in SAMPLES if sample.expected is not None], ids=_ids)
def test_pinned_titles(sample: Sample) -> None:
    assert summarize(sample.message) == sample.expected


def test_docs_list_the_titles_the_code_produces() -> None:
    doc = DOC.read_text(encoding="utf-8")

    assert doc_with_table(doc) == doc, "docs/titles.md is stale: run `python -m tests.titles.corpus --write`"


PIECES = (
    *(
        "Can you help me ",
        "Kannst du mir bitte helfen, ",
        "Pouvez-vous m'aider à ",
        "¿Puedes ayudarme a ",
        "Hi Claude, ",
    ),
    *("a ", "the ", "einen ", "zu ", "l'", "write a ", "trip ", "Lisbon", "ß", "İ", "东京", "0.5", "42 ", "x"),
    *("```", "```python\n", "\n", "- ", "1. ", ": ", ", ", "? ", "! ", "... ", "(", ")", "[", "{", "}", "'", "`"),
    *("==", "+", "#", "# ", ">>> ", "$ ", "    ", "\t", "—", "-", "🎉", "\u200b", "\x00", "\ufe0f", "https://x.y/z "),
)


def test_random_input_keeps_the_guarantees() -> None:
    """Never raises, never empty, within the limits, "New conversation" exactly when there is no letter or digit."""
    rng = random.Random(7)
    for _ in range(3000):
        message = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 30)))
        max_words, max_chars = rng.randint(1, 10), rng.randint(1, 90)
        _assert_is_a_title(summarize(message, max_words=max_words, max_chars=max_chars), message, max_words, max_chars)
