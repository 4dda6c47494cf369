"""Reads from a real streaming replica (db/replica.py): served there when it has replayed what the reader must
see, by the primary otherwise; a writer always reads its own writes, on its instance without help and on any
instance with `X-Read-After`; a lagging, stopped or failing replica never turns a read into an error.

The replica is a `pg_basebackup -R` standby of a private primary (tests/harness/replica.py); lag is made real
by pausing its replay."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import make_url

from tests.harness.app import running_api
from tests.harness.client import Api
from tests.harness.databases import APP_NAME, Backend, fresh_database, make_settings, new_user
from tests.harness.replica import ReplicaPair
from threadstore.config import ConfigError, Settings
from threadstore.db.replica import POSITION_PATTERN, format_position, parse_position
from threadstore.db.unit_of_work import Database
from threadstore.messages import service as messages_service

READ_AFTER = "X-Read-After"


@pytest.fixture(scope="module")
async def primary(replica_pair: ReplicaPair, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Backend]:
    async with fresh_database("postgresql", replica_pair.primary, tmp_path_factory.mktemp("primary")) as created:
        await replica_pair.caught_up()  # the database and its schema exist on the replica too
        yield created


@asynccontextmanager
async def instance(pair: ReplicaPair, backend: Backend, tmp: Path, **overrides: Any) -> AsyncIterator[Api]:
    """One threadstore instance reading from the replica; each has its own memory of its users' writes."""
    name = make_url(backend.url).database or ""
    settings = make_settings(backend, tmp, read_database_url=pair.replica_url(name), **overrides)
    async with running_api(backend, settings) as api:
        yield api


def served(by: str, reason: str) -> float:
    return REGISTRY.get_sample_value("threadstore_reads_total", {"served_by": by, "reason": reason}) or 0.0


def replica_reads() -> float:
    return served("replica", "replayed") + served("replica", "checked")


async def read_all(api: Api, user: str, thread_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """The three reads a replica may serve, each checked for 200."""
    headers = headers or {}
    listed = await api.request("GET", "/api/threads", user=user, headers=headers)
    got = await api.request("GET", f"/api/threads/{thread_id}", user=user, headers=headers)
    messages = await api.request("GET", f"/api/threads/{thread_id}/messages", user=user, headers=headers)
    return {"listed": listed, "got": got, "messages": messages}


def test_positions_round_trip() -> None:
    for position in (0, 1, 0x16_B374D848, 2**64 - 1):
        assert parse_position(format_position(position)) == position
        assert re.match(POSITION_PATTERN, format_position(position))
    assert parse_position("0/3000148") == 0x3000148
    for malformed in ("", "3000148", "0/", "/1", "G/1", "0/123456789", " 0/1"):
        assert parse_position(malformed) is None


def test_a_replica_needs_postgresql(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, read_database_url="postgresql+asyncpg://x@127.0.0.1/x")
    with pytest.raises(ConfigError, match="THREADSTORE_READ_DATABASE_URL"):
        Database.open(settings)


async def test_reads_go_to_the_replica_and_writes_carry_their_position(
    replica_pair: ReplicaPair, primary: Backend, tmp_path: Path
) -> None:
    user = new_user()
    async with instance(replica_pair, primary, tmp_path) as api:
        created = await api.request("POST", "/api/threads", user=user, json={"title": "on the primary"})
        assert created.status_code == 201
        assert re.match(POSITION_PATTERN, created.headers[READ_AFTER])
        appended = await api.request(
            "POST", f"/api/threads/{created.json()['id']}/messages", user=user, json={"content": "hi"}
        )
        assert parse_position(appended.headers[READ_AFTER]) > parse_position(created.headers[READ_AFTER])  # type: ignore[operator]
        await replica_pair.caught_up()
        before = replica_reads()
        answers = await read_all(api, user, created.json()["id"])
        assert all(r.status_code == 200 for r in answers.values())
        assert answers["got"].json()["title"] == "on the primary"
        assert [m["content"] for m in answers["messages"].json()["data"]] == ["hi"]
        assert replica_reads() - before == 3  # all three served by the replica
        assert READ_AFTER not in answers["got"].headers  # a read has no position to give


async def test_a_lagging_replica_never_hides_a_writers_own_writes(
    replica_pair: ReplicaPair, primary: Backend, tmp_path: Path
) -> None:
    """Replay paused: the writer's instance and, with X-Read-After, any other instance read from the primary;
    another instance without the header reads the replica, which has not seen the write (the lag is real)."""
    writer, other_user = new_user(), new_user()
    async with (
        instance(replica_pair, primary, tmp_path / "a") as first,
        instance(replica_pair, primary, tmp_path / "b") as second,
    ):
        await first.create_thread(other_user, title="seen by everyone")
        await replica_pair.caught_up()
        await replica_pair.pause_replay()
        try:
            created = await first.request("POST", "/api/threads", user=writer, json={"title": "draft"})
            thread_id = created.json()["id"]
            await first.request("POST", f"/api/threads/{thread_id}/messages", user=writer, json={"content": "one"})
            patched = await first.request("PATCH", f"/api/threads/{thread_id}", user=writer, json={"title": "final"})
            assert patched.status_code == 200
            position = {READ_AFTER: patched.headers[READ_AFTER]}
            behind = served("primary", "replica_behind")

            # The writer's own instance remembers its write: no header needed.
            mine = await read_all(first, writer, thread_id)
            assert mine["got"].json()["title"] == "final"
            assert [t["id"] for t in mine["listed"].json()["data"]] == [thread_id]
            assert [m["content"] for m in mine["messages"].json()["data"]] == ["one"]

            # Another instance, told the position: the same answers.
            told = await read_all(second, writer, thread_id, position)
            assert told["got"].json()["title"] == "final"
            assert told["got"].json()["version"] == mine["got"].json()["version"]
            assert [t["id"] for t in told["listed"].json()["data"]] == [thread_id]
            assert [m["content"] for m in told["messages"].json()["data"]] == ["one"]
            assert served("primary", "replica_behind") - behind == 6

            # Another instance, not told: the replica answers, and it has not replayed the write.
            untold = await second.request("GET", "/api/threads", user=writer)
            assert untold.status_code == 200 and untold.json()["data"] == []
            assert (await second.request("GET", f"/api/threads/{thread_id}", user=writer)).status_code == 404
            # Other users' reads keep going to the replica meanwhile.
            others = await second.request("GET", "/api/threads", user=other_user)
            assert [t["title"] for t in others.json()["data"]] == ["seen by everyone"]
        finally:
            await replica_pair.resume_replay()
        await replica_pair.caught_up()
        before = replica_reads()
        caught_up = await read_all(second, writer, thread_id)
        assert caught_up["got"].json()["title"] == "final"
        assert replica_reads() - before == 3


async def test_a_whole_conversation_read_is_routed_page_by_page_as_the_list_is(
    replica_pair: ReplicaPair, primary: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NDJSON (API.md, "Whole-conversation reads"): each page is a read of its own, routed like a page of the
    JSON list, with the request's X-Read-After applying to every page."""
    monkeypatch.setattr(messages_service, "WHOLE_PAGE_SIZE", 2)
    monkeypatch.setattr(messages_service, "WHOLE_FIRST_PAGE_SIZE", 2)
    writer = new_user()
    ndjson = {"Accept": "application/x-ndjson"}

    async def contents(api: Api, headers: dict[str, str]) -> list[str]:
        response = await api.request("GET", f"/api/threads/{thread['id']}/messages", user=writer, headers=headers)
        assert response.status_code == 200 and response.headers["content-type"] == "application/x-ndjson"
        return [json.loads(line)["content"] for line in response.content.splitlines()]

    async with (
        instance(replica_pair, primary, tmp_path / "a") as first,
        instance(replica_pair, primary, tmp_path / "b") as second,
    ):
        thread = await first.create_thread(writer, messages=[{"content": f"m{i}"} for i in range(1, 6)])
        await replica_pair.caught_up()
        before = replica_reads()
        assert await contents(second, ndjson) == ["m1", "m2", "m3", "m4", "m5"]
        assert replica_reads() - before == 3  # pages of 2, 2 and 1: each served by the replica
        await replica_pair.pause_replay()
        try:
            appended = await first.request(
                "POST", f"/api/threads/{thread['id']}/messages", user=writer, json={"content": "m6"}
            )
            behind = served("primary", "replica_behind")
            told = await contents(second, {**ndjson, READ_AFTER: appended.headers[READ_AFTER]})
            assert told == ["m1", "m2", "m3", "m4", "m5", "m6"]
            assert served("primary", "replica_behind") - behind == 3  # every page, not the first only
            assert await contents(first, ndjson) == told  # the writer's instance remembers its write
            assert await contents(second, ndjson) == told[:5]  # not told: the replica, which lags (for real)
        finally:
            await replica_pair.resume_replay()


async def test_read_your_writes_holds_under_real_replication_lag(
    replica_pair: ReplicaPair, primary: Backend, tmp_path: Path
) -> None:
    """Replay running: a write, then at once a read on another instance with the write's position, 60 times.
    Each read sees its write, whether the replica had replayed it or the primary answered."""
    user = new_user()
    async with (
        instance(replica_pair, primary, tmp_path / "a") as writer,
        instance(replica_pair, primary, tmp_path / "b") as reader,
    ):
        thread = await writer.create_thread(user, title="t")
        for n in range(60):
            appended = await writer.request(
                "POST", f"/api/threads/{thread['id']}/messages", user=user, json={"content": f"m{n}"}
            )
            page = await reader.request(
                "GET",
                f"/api/threads/{thread['id']}/messages",
                user=user,
                params={"order": "desc", "limit": 1},
                headers={READ_AFTER: appended.headers[READ_AFTER]},
            )
            assert page.status_code == 200
            assert page.json()["data"][0]["content"] == f"m{n}"
            got = await reader.request(
                "GET", f"/api/threads/{thread['id']}", user=user, headers={READ_AFTER: appended.headers[READ_AFTER]}
            )
            assert got.json()["message_count"] == n + 1


async def test_a_stopped_replica_sends_reads_to_the_primary_and_is_used_again_when_back(
    replica_pair: ReplicaPair, primary: Backend, tmp_path: Path
) -> None:
    user = new_user()
    async with instance(replica_pair, primary, tmp_path, read_replica_retry_seconds=0.5) as api:
        thread = await api.create_thread(user, title="kept")
        await replica_pair.caught_up()
        assert (await read_all(api, user, thread["id"]))["got"].status_code == 200  # pools a replica connection
        replica_pair.stop_replica("immediate")
        try:
            unavailable = served("primary", "replica_unavailable") + served("primary", "replica_disconnected")
            resting = served("primary", "replica_resting")
            for _ in range(3):
                answers = await read_all(api, user, thread["id"])
                assert [r.status_code for r in answers.values()] == [200, 200, 200]
                assert answers["got"].json()["title"] == "kept"
            after = served("primary", "replica_unavailable") + served("primary", "replica_disconnected")
            assert after > unavailable
            assert served("primary", "replica_resting") > resting  # not tried again at once
        finally:
            replica_pair.start_replica()
        await replica_pair.caught_up()
        await asyncio.sleep(0.6)  # the replica's rest is over
        before = replica_reads()
        for _ in range(3):  # the first may still find a dead pooled connection (then the primary answers)
            answers = await read_all(api, user, thread["id"])
            assert [r.status_code for r in answers.values()] == [200, 200, 200]
        assert replica_reads() > before


async def test_replica_connections_killed_mid_read_never_fail_a_read(
    replica_pair: ReplicaPair, primary: Backend, tmp_path: Path
) -> None:
    """The replica's backends are terminated over and over while reads run: every read answers 200 with the
    right data (from the replica or, when its connection died, from the primary)."""
    user = new_user()
    async with instance(replica_pair, primary, tmp_path, read_replica_retry_seconds=0.05) as api:
        thread = await api.create_thread(user, title="steady")
        await api.append(user, thread["id"], "x")
        await replica_pair.caught_up()
        stop = asyncio.Event()

        async def kill_replica_backends() -> int:
            killed = 0
            conn = await asyncpg.connect(replica_pair.replica.dsn())
            try:
                while not stop.is_set():
                    killed += await conn.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1",
                        APP_NAME,
                    )
                    await asyncio.sleep(0.005)
            finally:
                await conn.close()
            return killed

        killer = asyncio.create_task(kill_replica_backends())
        try:
            for _ in range(40):
                answers = await asyncio.gather(*(read_all(api, user, thread["id"]) for _ in range(4)))
                for answer in answers:
                    assert [r.status_code for r in answer.values()] == [200, 200, 200]
                    assert answer["got"].json()["title"] == "steady"
                    assert [m["content"] for m in answer["messages"].json()["data"]] == ["x"]
        finally:
            stop.set()
            killed = await killer
        assert killed > 0


@pytest.mark.parametrize("malformed", ["3000148", "0/", "G/1", "0/123456789"])
async def test_a_malformed_position_is_422(api: Api, user: str, malformed: str) -> None:
    """On every database, with or without a replica: the header is part of the API, checked alike."""
    thread = await api.create_thread(user)
    for path in ("/api/threads", f"/api/threads/{thread['id']}", f"/api/threads/{thread['id']}/messages"):
        response = await api.request("GET", path, user=user, headers={READ_AFTER: malformed})
        assert response.status_code == 422, path
        assert response.json()["errors"][0]["loc"] == ["header", "X-Read-After"]


async def test_without_a_replica_writes_carry_no_position(api: Api, user: str) -> None:
    """No replica, no round trip after each commit to read the position."""
    response = await api.request("POST", "/api/threads", user=user, json={})
    assert response.status_code == 201
    assert READ_AFTER not in response.headers
    for sent in ("0/1", ""):  # empty: no position yet, as absent
        ok = await api.request("GET", "/api/threads", user=user, headers={READ_AFTER: sent})
        assert ok.status_code == 200
