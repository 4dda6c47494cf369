"""POST /api/threads/{id}/auto-rename without an LLM: the built-in summarizer titles the first user message."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, Factory
from tests.threads.helpers import (
    append,
    assert_problem,
    assert_thread_response,
    get_thread,
    parse_time,
    same_problem,
)
from threadstore import disguise
from threadstore.titles import summarize

URL = "/api/threads"
PYTHON = "How do I reverse a list in Python?"
LISBON = "Lisbon trip with kids in March: can you help me plan three days?"


async def rename(api: Api, user: str, thread_id: str) -> Any:
    return await api.request("POST", f"{URL}/{thread_id}/auto-rename", user=user)


async def test_title_comes_from_the_first_user_message(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(
        messages=[
            {"role": "system", "content": "You are a helpful assistant that knows about cooking pasta."},
            {"role": "assistant", "content": "Hello! Ask me anything about gardening."},
            {"role": "user", "content": PYTHON},
            {"role": "user", "content": LISBON},
        ]
    )

    response = await rename(api, user, created["id"])

    thread = assert_thread_response(response)
    assert thread["title"] == summarize(PYTHON)
    assert "Python" in thread["title"] and "list" in thread["title"].lower()
    assert "pasta" not in thread["title"].lower() and "gardening" not in thread["title"].lower()
    assert response.headers["x-title-source"] == "fallback"


async def test_summarizer_names_the_topic_not_the_phrasing(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(messages=[{"content": LISBON}])

    thread = assert_thread_response(await rename(api, user, created["id"]))

    assert thread["title"].startswith("Lisbon trip")
    assert "help me" not in thread["title"].lower()


async def test_a_title_made_from_a_message_leaves_out_what_a_title_may_not_hold(
    api: Api, user: str, create_thread: Factory
) -> None:
    # Content is stored as written; a title made from it follows the rules of a title (test_disguise.py).
    created = await create_thread(messages=[{"content": "Plan a trip to \u202eLisbon\u202c with \u200bkids\U000e0041"}])

    thread = assert_thread_response(await rename(api, user, created["id"]))

    assert "Lisbon" in thread["title"]
    assert disguise.find(thread["title"]) is None, ascii(thread["title"])


async def test_rename_is_one_change_and_leaves_metadata_untouched(api: Api, user: str, create_thread: Factory) -> None:
    metadata = {"topic": "code", "nested": {"x": [1, 2]}}
    before = await create_thread(metadata=metadata, messages=[{"content": PYTHON}])

    response = await rename(api, user, before["id"])

    after = assert_thread_response(response)
    assert after["metadata"] == metadata
    assert after["version"] == before["version"] + 1
    assert response.headers["etag"] == f'"{after["version"]}"'
    assert parse_time(after["updated_at"]) > parse_time(before["updated_at"])
    assert (after["message_count"], after["status"]) == (before["message_count"], "active")
    assert await get_thread(api, user, before["id"]) == after


async def test_rename_replaces_an_existing_title(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(title="Untitled chat", messages=[{"content": PYTHON}])

    thread = assert_thread_response(await rename(api, user, created["id"]))

    assert thread["title"] == summarize(PYTHON)


async def test_renaming_again_to_the_same_title_changes_nothing(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(messages=[{"content": PYTHON}])
    first = assert_thread_response(await rename(api, user, created["id"]))

    second = assert_thread_response(await rename(api, user, created["id"]))

    assert second == first


async def test_title_respects_the_word_and_character_limits(api: Api, user: str, create_thread: Factory) -> None:
    long_message = " ".join(f"Supercalifragilistic{i}" for i in range(200))
    created = await create_thread(messages=[{"content": long_message}])

    title = assert_thread_response(await rename(api, user, created["id"]))["title"]

    assert title
    assert len(title) <= 80
    assert len(title.split()) <= 8


async def test_a_message_without_letters_still_gets_a_title(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(messages=[{"content": "🎉 !!! 🎉"}])

    response = await rename(api, user, created["id"])

    assert assert_thread_response(response)["title"]
    assert response.headers["x-title-source"] == "fallback"


async def test_a_user_message_appended_later_is_used(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(messages=[{"role": "system", "content": "Be concise."}])
    assert (await append(api, user, created["id"], PYTHON)).status_code == 201

    thread = assert_thread_response(await rename(api, user, created["id"]))

    assert thread["title"] == summarize(PYTHON)
    assert thread["version"] == 3


async def test_no_user_message_is_422_and_changes_nothing(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(
        title="kept",
        messages=[
            {"role": "system", "content": "Be concise."},
            {"role": "assistant", "content": "How can I help?"},
            {"role": "tool", "content": "{}"},
        ],
    )

    assert_problem(await rename(api, user, created["id"]), 422)

    assert await get_thread(api, user, created["id"]) == created


async def test_no_messages_at_all_is_422(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread()

    assert_problem(await rename(api, user, created["id"]), 422)

    assert await get_thread(api, user, created["id"]) == created


async def test_another_users_thread_is_404_and_changes_nothing(
    api: Api, user: str, other_user: str, create_thread: Factory
) -> None:
    created = await create_thread(messages=[{"content": PYTHON}])

    foreign = await rename(api, other_user, created["id"])
    missing = await rename(api, other_user, "thr_missing000000000000000")

    assert same_problem(assert_problem(foreign, 404), assert_problem(missing, 404))
    assert await get_thread(api, user, created["id"]) == created


async def test_archived_thread_is_409_and_changes_nothing(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(messages=[{"content": PYTHON}])
    archived = assert_thread_response(await api.request("DELETE", f"{URL}/{created['id']}", user=user))

    assert_problem(await rename(api, user, created["id"]), 409)

    assert await get_thread(api, user, created["id"]) == archived


async def test_permanently_deleted_thread_is_404(api: Api, user: str, create_thread: Factory) -> None:
    created = await create_thread(messages=[{"content": PYTHON}])
    params = {"permanent": "true"}
    assert (await api.request("DELETE", f"{URL}/{created['id']}", user=user, params=params)).status_code == 204

    assert_problem(await rename(api, user, created["id"]), 404)


async def test_auto_rename_requires_authentication(api: Api, create_thread: Factory) -> None:
    created = await create_thread(messages=[{"content": PYTHON}])

    response = await api.client.post(f"{URL}/{created['id']}/auto-rename")

    assert_problem(response, 401)


class TestConfiguredTitleLimit:
    @pytest.fixture
    def settings_overrides(self) -> dict[str, Any]:
        return {"max_title_chars": 20}

    async def test_generated_title_respects_a_lower_configured_limit(self, api: Api, user: str) -> None:
        first = "Can you help me plan a three day trip to Lisbon in March with kids?"
        created = await api.request("POST", "/api/threads", user=user, json={"messages": [{"content": first}]})
        renamed = await api.request("POST", f"/api/threads/{created.json()['id']}/auto-rename", user=user)
        assert renamed.status_code == 200
        assert 1 <= len(renamed.json()["title"]) <= 20
