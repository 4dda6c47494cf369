"""Titles and metadata keys refuse the characters that make text display as something it is not (bidi
controls, invisible format characters): 422 like any invalid field, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import update

from tests.conftest import Api, Factory
from tests.threads.helpers import append, assert_validation_error, get_thread, stored_thread_count
from threadstore.db.tables import threads

URL = "/api/threads"
# A right-to-left override, an isolate, a mark, an invisible space and a tag character; the first one found.
DISGUISING = {
    "rlo": ("invoice\u202efdp.exe", "U+202E"),
    "isolate": ("\u2067admin\u2069", "U+2067"),
    "rlm": ("total\u200f", "U+200F"),
    "zero-width-space": ("to\u200bpic", "U+200B"),
    "tag": ("title\U000e0041\U000e0042", "U+E0041"),
}
RLO = DISGUISING["rlo"][0]
# Invisible characters real text needs: joiners in emoji and Persian, a variation selector, a subdivision flag.
FLAG_SCOTLAND = "\U0001f3f4\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"
PERSIAN = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # "I want", with its zero-width non-joiner
NEEDED = f"👨\u200d👩\u200d👧 {PERSIAN} \u2764\ufe0f {FLAG_SCOTLAND}"


async def test_a_title_that_can_disguise_itself_is_422(api: Api, user: str, subtests: pytest.Subtests) -> None:
    for case_id, (title, found) in DISGUISING.items():
        with subtests.test(case_id):
            response = await api.request("POST", URL, user=user, json={"title": title})

            [error] = assert_validation_error(response, "title")["errors"]
            assert found in error["msg"]
            assert await stored_thread_count(api, user) == 0


async def test_patching_such_a_title_is_422_and_changes_nothing(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(title="Quarterly report")

    response = await api.request("PATCH", f"{URL}/{created['id']}", user=user, json={"title": RLO})

    assert_validation_error(response, "title")
    assert await get_thread(api, user, created["id"]) == created


async def test_a_metadata_key_that_can_disguise_itself_is_422(
    api: Api, user: str, create_thread: Factory, subtests: pytest.Subtests
) -> None:
    created = await create_thread(metadata={"topic": "travel"})
    key = DISGUISING["zero-width-space"][0]
    requests: dict[str, tuple[str, str, dict[str, Any]]] = {
        "create": ("POST", URL, {"metadata": {key: "x"}}),
        "patch": ("PATCH", f"{URL}/{created['id']}", {"metadata": {key: "x"}}),
        "append": ("POST", f"{URL}/{created['id']}/messages", {"content": "hi", "metadata": {key: "x"}}),
    }
    for case_id, (method, url, body) in requests.items():
        with subtests.test(case_id):
            response = await api.request(method, url, user=user, json=body)

            assert_validation_error(response, "metadata", key)
    assert await get_thread(api, user, created["id"]) == created
    assert await stored_thread_count(api, user) == 1


async def test_invisible_characters_that_text_needs_are_kept(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(title=NEEDED, metadata={NEEDED: NEEDED})

    assert (created["title"], created["metadata"]) == (NEEDED, {NEEDED: NEEDED})
    assert await get_thread(api, user, created["id"]) == created


async def test_metadata_values_and_message_content_are_stored_as_written(
    api: Api, user: str, create_thread: Factory
) -> None:
    # Only labels are judged: content is the conversation as typed (code, quoted text) and values are data.
    text = RLO + DISGUISING["tag"][0]
    created = await create_thread(metadata={"file": text})
    response = await append(api, user, created["id"], text, metadata={"file": text})

    assert response.status_code == 201, response.text
    assert (response.json()["content"], response.json()["metadata"]) == (text, {"file": text})
    assert (await get_thread(api, user, created["id"]))["metadata"] == {"file": text}


async def test_a_stored_key_is_not_judged_again_by_a_patch_that_leaves_it(
    api: Api, user: str, create_thread: Factory
) -> None:
    # Stored before the rule existed: a merge patch of another key must still apply, and may remove it.
    created = await create_thread()
    old = RLO
    async with api.database.engine.begin() as conn:
        await conn.execute(update(threads).where(threads.c.id == created["id"]).values(metadata={old: 1}))

    kept = await api.request("PATCH", f"{URL}/{created['id']}", user=user, json={"metadata": {"new": 2}})
    removed = await api.request("PATCH", f"{URL}/{created['id']}", user=user, json={"metadata": {old: None}})

    assert kept.status_code == 200, kept.text
    assert kept.json()["metadata"] == {old: 1, "new": 2}
    assert removed.status_code == 200, removed.text
    assert removed.json()["metadata"] == {"new": 2}
