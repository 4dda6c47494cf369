"""The conversation both systems store: deterministic, word-like messages of exactly 420 characters.

Standard library only: both virtualenvs import this module, so threadstore and LangGraph store the same
texts. Text made of one repeated character would flatter whichever store compresses (PostgreSQL's TOAST
compresses LangGraph's growing blobs), so messages are pseudo-random words from a fixed vocabulary, and
the assistant's reply differs from turn to turn by default for the same reason.
"""

from __future__ import annotations

import random

MESSAGE_CHARS = 420

_WORDS = (
    "the a of to and in is it that for on with as you can this be are we have not at or by from your plan "
    "trip day model answer question context thread message reply user assistant data table index query "
    "server memory token cost time week city train hotel museum river budget list step next first last "
    "check note idea draft code test error fix build run file page line word text summary detail option "
    "choice price ticket route map walk lunch dinner coffee market garden beach old new small large quick "
    "slow early late better maybe sure thanks please also then because while after before"
)
_VOCABULARY = tuple(_WORDS.split())
# Words of every length from 1 to _MAX_FILL (the last with a full stop), so the final word of a message
# always fits its remaining room exactly.
_FILL = ("I", "a.", "it.", "now.", "then.", "later.", "anyway.", "instead.", "tomorrow.", "yesterday.", "afterwards.")
_MAX_FILL = len(_FILL)
assert all(len(word) == n for n, word in enumerate(_FILL, start=1))
# A word adds at most its length + 2 (space, full stop); with words of at most _MAX_FILL - 2 characters,
# room above _MAX_FILL before a word leaves at least one character after it for the fill word.
assert max(map(len, _VOCABULARY)) <= _MAX_FILL - 2


def message(seed: str, chars: int = MESSAGE_CHARS) -> str:
    """`chars` characters of sentences drawn from `seed` alone: the same seed gives the same text anywhere."""
    rng = random.Random(seed)
    text = _sentence_start(rng.choice(_VOCABULARY))
    ends_sentence = False
    while True:
        room = chars - len(text) - 1  # after the separating space
        if room <= _MAX_FILL:
            return text + " " + _FILL[room - 1]
        word = rng.choice(_VOCABULARY)
        text += " " + (_sentence_start(word) if ends_sentence else word)
        ends_sentence = rng.random() < 0.12
        if ends_sentence:
            text += "."


def user_message(turn: int) -> str:
    return message(f"user-{turn}")


def assistant_reply(turn: int, constant: bool = False) -> str:
    """The reply at `turn`; with `constant`, one fixed reply for every turn."""
    return message("assistant" if constant else f"assistant-{turn}")


def _sentence_start(word: str) -> str:
    return word[:1].upper() + word[1:]
