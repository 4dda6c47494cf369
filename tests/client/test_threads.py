"""Threads through the client: create, read (ETag), list and its iterator, update (If-Match, merge patch),
archive and restore, auto-rename, fork, branch switch and permanent delete — sync and async."""

from __future__ import annotations

import pytest

from threadstore_client import (
    NOT_GIVEN,
    AsyncClient,
    Client,
    NewMessage,
    NotFoundError,
    PreconditionFailed,
    ValidationError,
)


def test_a_created_thread_reads_back_as_a_typed_thread(client: Client) -> None:
    made = client.threads.create(title="Trip to Lisbon", metadata={"topic": "travel"})
    assert (made.title, made.metadata, made.status) == ("Trip to Lisbon", {"topic": "travel"}, "active")
    assert made.version == 1
    assert client.threads.get(made.id) == made
    assert client.threads.get_if_changed(made.id, made.version) is None
    changed = client.threads.update(made.id, title="Lisbon in March")
    assert client.threads.get_if_changed(made.id, made.version) == changed


def test_initial_messages_form_a_chain_and_the_last_is_current(client: Client) -> None:
    made = client.threads.create(
        messages=[NewMessage(content="How long is the flight?"), {"role": "assistant", "content": "Two hours."}]
    )
    path = list(client.messages.list_all(made.id))
    assert [m.content for m in path] == ["How long is the flight?", "Two hours."]
    assert path[1].parent_id == path[0].id and made.current_message_id == path[1].id


def test_list_all_follows_every_cursor_and_filters_apply(client: Client) -> None:
    made = [client.threads.create(title=f"t{n}", metadata={"batch": "a" if n % 2 else "b"}) for n in range(7)]
    listed = list(client.threads.list_all(limit=2))
    assert [t.id for t in listed] == [t.id for t in reversed(made)]
    odd = list(client.threads.list_all(metadata={"batch": "a"}, limit=2))
    assert {t.id for t in odd} == {t.id for n, t in enumerate(made) if n % 2}
    page = client.threads.list(limit=3)
    assert len(page.data) == 3 and page.has_more and page.next_cursor


def test_a_merge_patch_and_if_match_update_a_thread(client: Client) -> None:
    made = client.threads.create(metadata={"a": "1", "b": "2"})
    patched = client.threads.update(made.id, metadata={"a": None, "c": "3"}, if_match=made.version)
    assert patched.metadata == {"b": "2", "c": "3"} and patched.version == made.version + 1
    with pytest.raises(PreconditionFailed) as stale:
        client.threads.update(made.id, title="late", if_match=made.version)
    assert stale.value.status == 412 and stale.value.request_id
    cleared = client.threads.update(made.id, title=None)
    assert cleared.title is None


def test_archive_restore_and_permanent_delete(client: Client) -> None:
    made = client.threads.create(title="old")
    archived = client.threads.archive(made.id)
    assert archived.status == "archived" and archived.archived_at is not None
    assert client.threads.archive(made.id) == archived  # idempotent
    assert [t.id for t in client.threads.list_all(status="archived")] == [made.id]
    assert client.threads.restore(made.id).status == "active"
    assert client.threads.delete(made.id) is None
    with pytest.raises(NotFoundError):
        client.threads.get(made.id)


def test_auto_rename_titles_the_thread_and_says_where_the_title_came_from(client: Client) -> None:
    made = client.threads.create(messages=[{"content": "Lisbon trip with kids in March: can you help me plan?"}])
    renamed = client.threads.auto_rename(made.id)
    assert renamed.title_source == "fallback" and renamed.thread.title and "Lisbon" in renamed.thread.title
    with pytest.raises(ValidationError):
        client.threads.auto_rename(client.threads.create().id)  # no user message: 422


def test_fork_copies_the_path_and_switch_branch_shows_another_branch(client: Client) -> None:
    made = client.threads.create(messages=[{"content": "q"}, {"role": "assistant", "content": "a1"}])
    first, answer = list(client.messages.list_all(made.id))
    other = client.messages.append(made.id, "a2", role="assistant", parent_id=first.id)
    assert (other.sibling_index, other.sibling_count) == (2, 2)
    switched = client.threads.switch_branch(made.id, answer.id)
    assert switched.current_message_id == answer.id
    fork = client.threads.fork(made.id, message_id=other.id, title=NOT_GIVEN)
    assert fork.id != made.id and fork.message_count == 2 and fork.title == made.title
    assert [m.content for m in client.messages.list_all(fork.id)] == ["q", "a2"]


async def test_the_async_client_has_the_same_threads(aclient: AsyncClient) -> None:
    made = await aclient.threads.create(title="async")
    assert await aclient.threads.get(made.id) == made
    listed = [t.id async for t in aclient.threads.list_all(limit=1)]
    assert listed == [made.id]
    assert (await aclient.threads.update(made.id, title="renamed", if_match=1)).title == "renamed"
    await aclient.threads.delete(made.id)
    with pytest.raises(NotFoundError):
        await aclient.threads.get(made.id)
