"""Race families: storms of concurrent clients released together against one server, each with its invariant.

Each family returns a `RaceResult`; a violation is any departure from the contract (docs/api.md): a lost or
duplicated write, a wrong status, a 500, or a 503 (retries are meant to absorb serialization failures).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from scripts.torture.client import Client, new_user, storm
from scripts.torture.dbview import Inspector
from scripts.torture.llm import FakeLlm


@dataclass
class RaceResult:
    family: str
    clients: int
    statuses: Counter[int] = field(default_factory=Counter)
    violations: list[str] = field(default_factory=list)

    @property
    def operations(self) -> int:
        return sum(self.statuses.values())

    @property
    def acknowledged(self) -> int:
        return sum(count for status, count in self.statuses.items() if 200 <= status < 300)

    def see(self, responses: list[httpx.Response]) -> None:
        for response in responses:
            self.statuses[response.status_code] += 1

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            self.violations.append(f"{self.family}: {message}")

    def only(self, responses: list[httpx.Response], allowed: set[int], what: str) -> None:
        bad = Counter(r.status_code for r in responses if r.status_code not in allowed)
        self.expect(not bad, f"{what}: unexpected statuses {dict(bad)} (allowed {sorted(allowed)})")
        for response in responses:
            if response.status_code >= 400:
                kind = response.headers.get("content-type", "").split(";")[0]
                self.expect(kind == "application/problem+json", f"{what}: {response.status_code} is not a problem")


@dataclass
class Race:
    client: Client
    db: Inspector
    clients: int = 32
    llm: FakeLlm | None = None  # the server's title generator, when it was started with one


Family = Callable[[Race], Awaitable[RaceResult]]
Call = Callable[[], Awaitable[httpx.Response]]


def call(client: Client, method: str, path: str, user: str, **kwargs: Any) -> Call:
    """A request to send later (when the storm's gate opens)."""
    return lambda: client.request(method, path, user, **kwargs)


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
}
