"""A message that arrives whole is folded for search as its request is parsed, never inside the unit of work
that stores it: there a connection is held (on SQLite, the write lock), and folding a long text costs tens of
milliseconds (hundreds in CJK)."""

from __future__ import annotations

import traceback
from collections.abc import Iterator

import pytest

from tests.conftest import Api, Factory
from threadstore.db import unit_of_work
from threadstore.search import index


@pytest.fixture
def folds_in_a_unit(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[bool]]:
    """For each fold of a text with the word "fold-me": whether it ran inside a unit of work (the transaction
    owner's frames are on the stack)."""
    seen: list[bool] = []
    real = index.term_texts

    def recording(text: str) -> list[str]:
        if "fold-me" in text:
            seen.append(any(frame.filename == unit_of_work.__file__ for frame in traceback.extract_stack()))
        return real(text)

    monkeypatch.setattr(index, "term_texts", recording)
    yield seen


async def test_an_append_and_a_new_threads_messages_are_folded_before_the_unit_takes_a_connection(
    api: Api, user: str, create_thread: Factory, folds_in_a_unit: list[bool]
) -> None:
    thread = await create_thread(messages=[{"content": "fold-me first"}, {"content": "fold-me second"}])
    r = await api.request("POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": "fold-me x"})
    assert r.status_code == 201, r.text
    parts = [{"type": "text", "text": "fold-me in parts"}]
    r = await api.request("POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": parts})
    assert r.status_code == 201, r.text
    assert folds_in_a_unit == [False] * 4
    # and what was folded is what search finds
    r = await api.request("GET", "/api/search", user=user, params={"q": '"fold-me in parts"'})
    assert [result["thread"]["id"] for result in r.json()["data"]] == [thread["id"]], r.text
