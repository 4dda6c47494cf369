"""Race families: storms of concurrent clients released together against one server, each with its invariant.

Each family returns a `RaceResult`; a violation is any departure from the contract (docs/api.md): a lost or
duplicated write, a wrong status, a 500, or a 503 (retries are meant to absorb serialization failures).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from typing import Any

import httpx
import orjson
from scripts.torture import reply_races
from scripts.torture.client import new_user, storm
from scripts.torture.family import Call, Family, Race, RaceResult, call

from threadstore.db import event_body


async def _create(race: Race, user: str, **body: Any) -> dict[str, Any]:
    response = await race.client.request("POST", "/api/threads", user, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _thread(race: Race, user: str, thread_id: str) -> httpx.Response:
    return await race.client.request("GET", f"/api/threads/{thread_id}", user)


async def _all_messages(race: Race, user: str, thread_id: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await race.client.request("GET", f"/api/threads/{thread_id}/messages", user, params=params)).json()
        found += page["data"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return found


async def appends_to_one_thread(race: Race) -> RaceResult:
    """n appends to one thread: seq 1..n, no gap, no repeat; message_count == n; each listed as acknowledged."""
    result = RaceResult("appends to one thread", race.clients)
    user = new_user()
    thread = await _create(race, user)
    url = f"/api/threads/{thread['id']}/messages"
    responses = await storm(
        [call(race.client, "POST", url, user, json={"content": f"append {i}"}) for i in range(race.clients)]
    )
    result.see(responses)
    result.only(responses, {201}, "append")
    created = [r.json() for r in responses if r.status_code == 201]
    seqs = sorted(m["seq"] for m in created)
    result.expect(seqs == list(range(1, len(created) + 1)), f"seqs are not 1..{len(created)}: {seqs}")
    after = (await _thread(race, user, thread["id"])).json()
    result.expect(after["message_count"] == len(created), f"message_count {after['message_count']} != {len(created)}")
    result.expect(after["version"] == 1 + len(created), f"version {after['version']} != {1 + len(created)}")
    listed = await _all_messages(race, user, thread["id"])
    result.expect(
        sorted(listed, key=lambda m: m["seq"]) == sorted(created, key=lambda m: m["seq"]),
        "the listed messages differ from the acknowledged ones",
    )
    return result


async def merge_patches_on_distinct_keys(race: Race) -> RaceResult:
    """n merge patches, each setting its own metadata key: none lost, each one change."""
    result = RaceResult("metadata merge patches on distinct keys", race.clients)
    user = new_user()
    thread = await _create(race, user, metadata={"base": "kept"})
    url = f"/api/threads/{thread['id']}"
    responses = await storm(
        [call(race.client, "PATCH", url, user, json={"metadata": {f"k{i}": i}}) for i in range(race.clients)]
    )
    result.see(responses)
    result.only(responses, {200}, "patch")
    after = (await _thread(race, user, thread["id"])).json()
    expected = {"base": "kept", **{f"k{i}": i for i in range(race.clients)}}
    lost = sorted(set(expected) - set(after["metadata"]))
    result.expect(after["metadata"] == expected, f"metadata lost keys {lost}")
    result.expect(after["version"] == 1 + race.clients, f"version {after['version']} != {1 + race.clients}")
    versions = sorted(r.json()["version"] for r in responses if r.status_code == 200)
    result.expect(versions == list(range(2, 2 + len(versions))), f"patch versions are not distinct: {versions}")
    return result


async def if_match_storm(race: Race) -> RaceResult:
    """n renames with If-Match of the same version: exactly one 200, the rest 412, the winner's title kept."""
    result = RaceResult("If-Match storm", race.clients)
    user = new_user()
    thread = await _create(race, user, title="original")
    url = f"/api/threads/{thread['id']}"
    match = {"If-Match": f'"{thread["version"]}"'}
    responses = await storm(
        [call(race.client, "PATCH", url, user, json={"title": f"t{i}"}, headers=match) for i in range(race.clients)]
    )
    result.see(responses)
    result.only(responses, {200, 412}, "conditional patch")
    winners = [r.json() for r in responses if r.status_code == 200]
    result.expect(len(winners) == 1, f"{len(winners)} winners")
    after = (await _thread(race, user, thread["id"])).json()
    if len(winners) == 1:
        result.expect(after["title"] == winners[0]["title"], f"title {after['title']!r} is not the winner's")
    result.expect(after["version"] == 2, f"version {after['version']} != 2")
    return result


async def archive_racing_appends(race: Race) -> RaceResult:
    """Appends racing an archive: each append lands before the archive (seq <= final count) or is 409."""
    result = RaceResult("archive racing appends", race.clients)
    user = new_user()
    thread = await _create(race, user)
    url = f"/api/threads/{thread['id']}"
    calls: list[Call] = [
        call(race.client, "POST", f"{url}/messages", user, json={"content": f"m{i}"}) for i in range(race.clients - 1)
    ]
    at = random.randrange(len(calls) + 1)
    calls.insert(at, call(race.client, "DELETE", url, user))
    responses = await storm(calls)
    archive, appends = responses[at], responses[:at] + responses[at + 1 :]
    result.see(responses)
    result.only([archive], {200}, "archive")
    result.only(appends, {201, 409}, "append")
    landed = sorted(r.json()["seq"] for r in appends if r.status_code == 201)
    after = (await _thread(race, user, thread["id"])).json()
    result.expect(after["status"] == "archived", f"status {after['status']}")
    result.expect(landed == list(range(1, len(landed) + 1)), f"landed seqs are not 1..{len(landed)}: {landed}")
    result.expect(after["message_count"] == len(landed), f"message_count {after['message_count']} != {len(landed)}")
    if archive.status_code == 200:
        result.expect(
            archive.json()["message_count"] == len(landed), "an append landed after the archive was acknowledged"
        )
    listed = await _all_messages(race, user, thread["id"])
    result.expect(len(listed) == len(landed), f"{len(listed)} messages listed, {len(landed)} acknowledged")
    return result


async def permanent_delete_racing_appends(race: Race) -> RaceResult:
    """Appends racing a permanent delete: no 500, no orphan message, the thread gone for good."""
    result = RaceResult("permanent delete racing appends", race.clients)
    user = new_user()
    thread = await _create(race, user, messages=[{"content": "first"}])
    url = f"/api/threads/{thread['id']}"
    calls: list[Call] = [
        call(race.client, "POST", f"{url}/messages", user, json={"content": f"m{i}"}) for i in range(race.clients - 1)
    ]
    at = random.randrange(len(calls) + 1)
    calls.insert(at, call(race.client, "DELETE", url, user, params={"permanent": "true"}))
    responses = await storm(calls)
    delete, appends = responses[at], responses[:at] + responses[at + 1 :]
    result.see(responses)
    result.only([delete], {204}, "permanent delete")
    result.only(appends, {201, 404, 409}, "append")
    result.expect((await _thread(race, user, thread["id"])).status_code == 404, "the thread is still there")
    left = await race.db.scalar("SELECT count(*) FROM messages WHERE thread_id = :id", id=thread["id"])
    result.expect(left == 0, f"{left} messages of the deleted thread remain")
    orphans = await race.db.orphan_messages()
    result.expect(orphans == 0, f"{orphans} orphan messages")
    return result


async def idempotent_create_storm(race: Race) -> RaceResult:
    """n creates (with initial messages) under one Idempotency-Key: one thread, identical 201s or 409."""
    result = RaceResult("idempotent create storm", race.clients)
    user = new_user()
    title = f"once {uuid.uuid4().hex[:8]}"
    body = {
        "title": title,
        "metadata": {"k": "v"},
        "messages": [{"content": "a"}, {"role": "assistant", "content": "b"}],
    }
    key = {"Idempotency-Key": f"create-{uuid.uuid4().hex}"}
    responses = await storm([call(race.client, "POST", "/api/threads", user, json=body, headers=key)] * race.clients)
    result.see(responses)
    result.only(responses, {201, 409}, "keyed create")
    created = {r.content for r in responses if r.status_code == 201}
    result.expect(len(created) == 1, f"{len(created)} distinct 201 bodies")
    rows = await race.db.threads_of([user])
    result.expect(len(rows) == 1, f"{len(rows)} threads created")
    for row in rows:
        result.expect(row["message_count"] == 2, f"message_count {row['message_count']} != 2")
        count = await race.db.scalar("SELECT count(*) FROM messages WHERE thread_id = :id", id=row["id"])
        result.expect(count == 2, f"{count} messages stored, 2 sent")
    again = await race.client.request("POST", "/api/threads", user, json=body, headers=key)
    result.see([again])
    result.expect(again.status_code == 201 and again.content in created, "a later repeat is not the first response")
    return result


async def idempotent_append_storm(race: Race) -> RaceResult:
    """n appends under one Idempotency-Key: one message, identical 201s or 409."""
    result = RaceResult("idempotent append storm", race.clients)
    user = new_user()
    thread = await _create(race, user)
    url = f"/api/threads/{thread['id']}/messages"
    key = {"Idempotency-Key": f"append-{uuid.uuid4().hex}"}
    responses = await storm(
        [call(race.client, "POST", url, user, json={"content": "once"}, headers=key)] * race.clients
    )
    result.see(responses)
    result.only(responses, {201, 409}, "keyed append")
    created = {r.content for r in responses if r.status_code == 201}
    result.expect(len(created) == 1, f"{len(created)} distinct 201 bodies")
    after = (await _thread(race, user, thread["id"])).json()
    result.expect(after["message_count"] == 1 and after["version"] == 2, f"count/version {after}")
    stored = await race.db.scalar("SELECT count(*) FROM messages WHERE thread_id = :id", id=thread["id"])
    result.expect(stored == 1, f"{stored} messages stored")
    again = await race.client.request("POST", url, user, json={"content": "once"}, headers=key)
    result.see([again])
    result.expect(again.status_code == 201 and again.content in created, "a later repeat is not the first response")
    return result


async def auto_rename_racing_manual_renames(race: Race) -> RaceResult:
    """Auto-renames racing manual renames: an auto-rename applies only onto the version it read (else 409), so
    every applied change has its own version and the final title is the last applied one: a manual title is
    never overwritten by an auto-rename that read the thread before it."""
    result = RaceResult("auto-rename racing manual renames", race.clients)
    user = new_user()
    question = "Can you help me plan a three day trip to Lisbon in March with kids?"
    thread = await _create(race, user, messages=[{"content": question}])
    url = f"/api/threads/{thread['id']}"
    calls: list[Call] = []
    for i in range(race.clients):
        if i % 2:
            calls.append(call(race.client, "PATCH", url, user, json={"title": f"manual {i}"}))
        else:
            calls.append(call(race.client, "POST", f"{url}/auto-rename", user))
    responses = await storm(calls)
    result.see(responses)
    manual = [r for i, r in enumerate(responses) if i % 2]
    auto = [r for i, r in enumerate(responses) if not i % 2]
    result.only(manual, {200}, "manual rename")
    result.only(auto, {200, 409}, "auto-rename")
    applied = [r.json() for r in responses if r.status_code == 200]
    changes = [t for t in applied if t["version"] > 1]
    versions = [t["version"] for t in changes]
    # A no-op (same title again) keeps the version; every real change must own a distinct version.
    distinct: dict[int, set[str]] = {}
    for t in changes:
        distinct.setdefault(t["version"], set()).add(t["title"])
    clashes = {v: titles for v, titles in distinct.items() if len(titles) > 1}
    result.expect(not clashes, f"two different titles applied at one version: {clashes}")
    after = (await _thread(race, user, thread["id"])).json()
    if versions:
        last = max(changes, key=lambda t: t["version"])
        result.expect(after["version"] == last["version"], f"version {after['version']} != {last['version']}")
        result.expect(after["title"] == last["title"], f"title {after['title']!r} != last applied {last['title']!r}")
    result.expect(after["version"] == 1 + len(distinct), f"version {after['version']} != 1 + {len(distinct)} changes")
    return result


async def auto_renames_held_while_renamed(race: Race) -> RaceResult:
    """Auto-renames that read the thread, then wait on a held title generator while manual renames commit:
    every one of them must be 409 once the generator answers, and the last manual title stays."""
    result = RaceResult("held auto-renames racing manual renames", race.clients)
    if race.llm is None:
        return result
    user = new_user()
    thread = await _create(race, user, messages=[{"content": "What should I pack for a week of hiking?"}])
    url = f"/api/threads/{thread['id']}"
    autos = race.clients // 2
    race.llm.hold()
    try:
        pending = [asyncio.create_task(race.client.request("POST", f"{url}/auto-rename", user)) for _ in range(autos)]
        generating = await race.llm.wait_entered(autos)
        result.expect(generating, "the auto-renames did not all reach the title generator")
        manual = await storm(
            [call(race.client, "PATCH", url, user, json={"title": f"manual {i}"}) for i in range(race.clients - autos)]
        )
    finally:
        race.llm.release()
    auto = list(await asyncio.gather(*pending))
    result.see(manual + auto)
    result.only(manual, {200}, "manual rename")
    result.only(auto, {409}, "auto-rename of a thread renamed meanwhile")
    after = (await _thread(race, user, thread["id"])).json()
    last = max((r.json() for r in manual if r.status_code == 200), key=lambda t: t["version"], default=None)
    if last is not None:
        result.expect(after["title"] == last["title"], f"title {after['title']!r} is not the last manual one")
    result.expect(after["version"] == 1 + len(manual), f"version {after['version']} != {1 + len(manual)}")
    return result


async def many_writers(race: Race) -> RaceResult:
    """n clients writing at once to their own threads (create with messages, append, patch): all succeed.
    On SQLite this is the "database is locked" check: writers queue on the write lock, none fails."""
    result = RaceResult("many writers", race.clients)
    users = [new_user() for _ in range(race.clients)]
    threads = await storm(
        [call(race.client, "POST", "/api/threads", u, json={"messages": [{"content": "hi"}]}) for u in users]
    )
    result.see(threads)
    result.only(threads, {201}, "create")
    ids = [r.json()["id"] if r.status_code == 201 else None for r in threads]
    calls: list[Call] = []
    for u, thread_id in zip(users, ids, strict=True):
        if thread_id is None:
            continue
        calls.append(call(race.client, "POST", f"/api/threads/{thread_id}/messages", u, json={"content": "x"}))
        calls.append(call(race.client, "PATCH", f"/api/threads/{thread_id}", u, json={"metadata": {"w": u}}))
    writes = await storm(calls)
    result.see(writes)
    result.only(writes, {200, 201}, "append/patch")
    rows = await race.db.threads_of(users)
    result.expect(len(rows) == race.clients, f"{len(rows)} threads stored, {race.clients} acknowledged")
    for row in rows:
        ok = row["message_count"] == 2 and row["metadata"].get("w") == row["user_id"] and row["version"] == 3
        result.expect(ok, f"thread {row['id']} is {row}")
    return result


# -- branches (API.md v2): the thread row is every tree write's lock point (docs/branches-design.md §3) ------


async def _add(race: Race, user: str, thread_id: str, content: str, **parent: Any) -> dict[str, Any]:
    body = {"content": content, **parent}
    response = await race.client.request("POST", f"/api/threads/{thread_id}/messages", user, json=body)
    assert response.status_code == 201, response.text
    added: dict[str, Any] = response.json()
    return added


async def _listing(race: Race, user: str, thread_id: str, **selector: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 100, **selector, **({"cursor": cursor} if cursor else {})}
        response = await race.client.request("GET", f"/api/threads/{thread_id}/messages", user, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        found += page["data"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            return found


async def _branched(race: Race, user: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A thread whose tree has three answers to its question, the last continued: q → a1, a2, a3 → u3 (current)."""
    tag = uuid.uuid4().hex[:8]
    thread = await _create(
        race, user, messages=[{"content": f"q {tag}"}, {"role": "assistant", "content": f"a1 {tag}"}]
    )
    q, a1 = await _listing(race, user, thread["id"])
    made = [q, a1]
    for name in ("a2", "a3"):
        made.append(await _add(race, user, thread["id"], f"{name} {tag}", parent_id=q["id"], role="assistant"))
    made.append(await _add(race, user, thread["id"], f"u3 {tag}"))
    return thread, made


def _tree_check(result: RaceResult, violations: list[str]) -> None:
    for violation in violations[:10]:
        result.expect(False, violation)


async def sibling_appends_to_one_parent(race: Race) -> RaceResult:
    """n appends naming the same parent: n siblings with sibling_index 1..n (no gap, no repeat), each listed by
    siblings_of with sibling_count n, and the last committed (highest seq) current."""
    result = RaceResult("sibling appends to one parent", race.clients)
    user = new_user()
    thread = await _create(race, user, messages=[{"content": "the question"}])
    (parent,) = await _listing(race, user, thread["id"])
    url = f"/api/threads/{thread['id']}/messages"
    body = {"role": "assistant", "parent_id": parent["id"]}
    responses = await storm(
        [call(race.client, "POST", url, user, json={**body, "content": f"answer {i}"}) for i in range(race.clients)]
    )
    result.see(responses)
    result.only(responses, {201}, "append with parent_id")
    created = {m["id"]: m for m in (r.json() for r in responses if r.status_code == 201)}
    indexes = sorted(m["sibling_index"] for m in created.values())
    result.expect(indexes == list(range(1, len(created) + 1)), f"sibling_index is not 1..{len(created)}: {indexes}")
    siblings = await _listing(race, user, thread["id"], siblings_of=next(iter(created), parent["id"]))
    result.expect([m["id"] for m in siblings] == sorted(created, key=lambda i: created[i]["sibling_index"]), "siblings")
    counts = Counter(m["sibling_count"] for m in siblings)
    result.expect(counts == Counter({len(created): len(created)}), f"sibling_count {dict(counts)} != {len(created)}")
    for m in siblings:
        result.expect(m["parent_id"] == parent["id"] and m["depth"] == 2, f"message {m['id']} misplaced: {m}")
    after = (await _thread(race, user, thread["id"])).json()
    last = max(created.values(), key=lambda m: m["seq"], default=parent)
    result.expect(after["current_message_id"] == last["id"], "the current message is not the last committed append")
    result.expect(after["message_count"] == 1 + len(created), f"message_count {after['message_count']}")
    result.expect(after["version"] == 1 + len(created), f"version {after['version']} != {1 + len(created)}")
    _tree_check(result, await race.db.tree_violations([thread["id"]]))
    return result


def _newest_leaf(children: dict[str, list[str]], message_id: str) -> str:
    while children.get(message_id):
        message_id = children[message_id][-1]
    return message_id


async def appends_racing_branch_switches(race: Race) -> RaceResult:
    """Appends without parent_id interleaved with switches of current_message_id. Every write moves the thread's
    version by one under its row lock, so the versions order them: the switches' versions come from their
    thread.updated events, the appends take the others in seq order. Replayed in that order, every append's
    parent is the message current just before it, every switch stores the newest leaf below its target as the
    tree stood then, and the current message is always a leaf."""
    result = RaceResult("appends racing branch switches", race.clients)
    user = new_user()
    thread, made = await _branched(race, user)
    before = (await _thread(race, user, thread["id"])).json()
    url = f"/api/threads/{thread['id']}"
    calls: list[Call] = []
    targets: list[str | None] = []
    for i in range(race.clients):
        if i % 3 == 2:
            target = random.choice(made)["id"]
            calls.append(call(race.client, "PATCH", url, user, json={"current_message_id": target}))
            targets.append(target)
        else:
            calls.append(call(race.client, "POST", f"{url}/messages", user, json={"content": f"x{i}"}))
            targets.append(None)
    responses = await storm(calls)
    result.see(responses)
    appends = [r for r, t in zip(responses, targets, strict=True) if t is None]
    switches = [(r, t) for r, t in zip(responses, targets, strict=True) if t is not None]
    result.only(appends, {201}, "append")
    result.only([r for r, _ in switches], {200}, "switch")
    events = await race.db.rows(
        "SELECT body FROM events WHERE thread_id = :id AND type = 'thread.updated' ORDER BY id", id=thread["id"]
    )
    switched = {}
    for row in events:
        data = orjson.loads(event_body.stored(bytes(row["body"])))
        switched[data["version"]] = data["current_message_id"]
    added = sorted((r.json() for r in appends if r.status_code == 201), key=lambda m: m["seq"])
    after = (await _thread(race, user, thread["id"])).json()
    versions = range(before["version"] + 1, after["version"] + 1)
    result.expect(len(versions) == len(added) + len(switched), "versions are not one per append and switch")
    result.expect(set(switched) <= set(versions), f"switch versions {sorted(switched)} outside {versions}")
    children: dict[str, list[str]] = {}
    for m in made:
        if m["parent_id"] is not None:
            children.setdefault(m["parent_id"], []).append(m["id"])
    current = before["current_message_id"]
    state = {before["version"]: current}
    appended = iter(added)
    for version in versions:
        if version in switched:
            current = switched[version]
            reachable = {_newest_leaf(children, t) for r, t in switches if r.json().get("version") == version and t}
            result.expect(current in reachable, f"version {version}: switched to {current}, no target leads there")
        else:
            message = next(appended, None)
            if message is None:
                break
            result.expect(
                message["parent_id"] == current, f"append {message['id']} follows {message['parent_id']}, not {current}"
            )
            children.setdefault(current, []).append(message["id"])
            current = message["id"]
        result.expect(not children.get(current), f"version {version}: current {current} is not a leaf")
        state[version] = current
    for response, _target in switches:
        if response.status_code == 200:
            answered = response.json()
            expected = state.get(answered["version"])
            result.expect(answered["current_message_id"] == expected, "a switch answered a state that never was")
    result.expect(after["current_message_id"] == current, "the stored current message is not the replay's")
    _tree_check(result, await race.db.tree_violations([thread["id"]]))
    return result


async def branch_delete_racing_appends(race: Race) -> RaceResult:
    """A delete of a branch racing appends under it (naming a parent inside it, or none while the current
    message is inside it): the branch goes whole with everything appended under it, an append either commits
    (and is deleted with the branch if it landed under it) or fails cleanly (404/409/422), never a 500."""
    result = RaceResult("branch delete racing appends", race.clients)
    user = new_user()
    thread, made = await _branched(race, user)
    q, a3, u3 = made[0], made[3], made[4]
    url = f"/api/threads/{thread['id']}"
    calls: list[Call] = []
    for i in range(race.clients - 1):
        body: dict[str, Any] = {"content": f"under {i}"}
        if i % 3 == 1:
            body["parent_id"] = random.choice([a3["id"], u3["id"]])
        calls.append(call(race.client, "POST", f"{url}/messages", user, json=body))
    at = random.randrange(len(calls) + 1)
    calls.insert(at, call(race.client, "DELETE", f"{url}/messages/{a3['id']}", user))
    responses = await storm(calls)
    delete, appends = responses[at], responses[:at] + responses[at + 1 :]
    result.see(responses)
    result.only([delete], {204}, "branch delete")
    result.only(appends, {201, 404, 409, 422}, "append under a branch being deleted")
    parents = {m["id"]: m["parent_id"] for m in made}
    acknowledged = [r.json() for r in appends if r.status_code == 201]
    parents |= {m["id"]: m["parent_id"] for m in acknowledged}

    def under_deleted(message_id: str | None) -> bool:
        while message_id is not None:
            if message_id == a3["id"]:
                return True
            message_id = parents.get(message_id)
        return False

    stored = {m["id"] for m in await _listing(race, user, thread["id"], view="all")}
    for m in made + acknowledged:
        gone = under_deleted(m["id"])
        result.expect(
            (m["id"] in stored) != gone, f"message {m['id']} {'survived' if gone else 'went with'} the delete"
        )
    result.expect(stored <= set(parents), "a stored message was never acknowledged")
    after = (await _thread(race, user, thread["id"])).json()
    result.expect(after["message_count"] == len(stored), f"message_count {after['message_count']} != {len(stored)}")
    result.expect(after["current_message_id"] in stored, "the current message is not a stored message")
    result.expect(q["id"] in stored, "the question went with the branch")
    _tree_check(result, await race.db.tree_violations([thread["id"]]))
    return result


async def forks_racing_appends(race: Race) -> RaceResult:
    """Forks racing appends to the source (with and without parent_id): each copy is exactly the source's path,
    root to one of its messages, as of one moment: the named message's path, or for a fork of the current one
    the path to a message that was current at some time (the first current or an append's)."""
    result = RaceResult("forks racing appends", race.clients)
    user = new_user()
    thread, made = await _branched(race, user)
    url = f"/api/threads/{thread['id']}"
    calls: list[Call] = []
    named: dict[int, str | None] = {}
    for i in range(race.clients):
        if i % 4 == 0:
            target = random.choice([None, random.choice(made)["id"]])
            body = {"message_id": target} if target else {}
            calls.append(call(race.client, "POST", f"{url}/fork", user, json={"title": f"fork {i}", **body}))
            named[i] = target
            continue
        body = {"content": f"more {i}"}
        if i % 4 == 1:
            body["parent_id"] = random.choice(made)["id"]
        calls.append(call(race.client, "POST", f"{url}/messages", user, json=body))
    responses = await storm(calls)
    result.see(responses)
    forks = [(r, named[n]) for n, r in enumerate(responses) if n % 4 == 0]
    appends = [r for n, r in enumerate(responses) if n % 4]
    result.only([r for r, _ in forks], {201}, "fork")
    result.only(appends, {201}, "append")
    source = {m["id"]: m for m in await _listing(race, user, thread["id"], view="all")}
    by_content = {m["content"]: m for m in source.values()}
    once_current = {made[-1]["id"]} | {r.json()["id"] for r in appends if r.status_code == 201}
    copies = []
    for response, target in forks:
        if response.status_code != 201:
            continue
        copy = response.json()
        copies.append(copy["id"])
        copied = await _listing(race, user, copy["id"], view="all")
        chain = all(m["parent_id"] == (copied[n - 1]["id"] if n else None) for n, m in enumerate(copied))
        result.expect(chain and [m["seq"] for m in copied] == list(range(1, len(copied) + 1)), "a copy is no chain")
        leaf = by_content.get(copied[-1]["content"]) if copied else None
        if leaf is None:
            result.expect(False, f"fork {copy['id']}: its last message is none of the source's")
            continue
        result.expect(target in (None, leaf["id"]), f"fork {copy['id']} copied to {leaf['id']}, not {target}")
        result.expect(target is not None or leaf["id"] in once_current, f"fork {copy['id']}: never current")
        path = await _listing(race, user, thread["id"], leaf=leaf["id"])
        same = [(m["role"], m["content"], m["metadata"], m["created_at"]) for m in path] == [
            (m["role"], m["content"], m["metadata"], m["created_at"]) for m in copied
        ]
        result.expect(same, f"fork {copy['id']} is not the source's path to {leaf['id']}")
        result.expect(copy["current_message_id"] == copied[-1]["id"], f"fork {copy['id']}: current is not its last")
    _tree_check(result, await race.db.tree_violations([thread["id"], *copies]))
    return result


FAMILIES: dict[str, Family] = {
    "appends": appends_to_one_thread,
    "merge-patches": merge_patches_on_distinct_keys,
    "if-match": if_match_storm,
    "archive-vs-appends": archive_racing_appends,
    "delete-vs-appends": permanent_delete_racing_appends,
    "idempotent-create": idempotent_create_storm,
    "idempotent-append": idempotent_append_storm,
    "auto-rename-vs-rename": auto_rename_racing_manual_renames,
    "held-auto-rename-vs-rename": auto_renames_held_while_renamed,
    "many-writers": many_writers,
    "sibling-appends": sibling_appends_to_one_parent,
    "appends-vs-switches": appends_racing_branch_switches,
    "branch-delete-vs-appends": branch_delete_racing_appends,
    "forks-vs-appends": forks_racing_appends,
    **reply_races.FAMILIES,
}
