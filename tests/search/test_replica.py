"""Search on a read replica (API.md "Search": "a committed message is found by the next search — on a read
replica once it has replayed the commit; the writer always sees its own writes"): with the replica's replay
paused, the writer's instance, and any instance told `X-Read-After`, find the new text (read from the
primary); another instance not told reads the replica, which has not; once replayed, the replica serves the
search and finds it. The replica is a real streaming standby (tests/harness/replica.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.db.test_replica import READ_AFTER, instance, replica_reads, served
from tests.harness.databases import Backend, fresh_database, new_user
from tests.harness.replica import ReplicaPair
from tests.search.helpers import search


@pytest.fixture(scope="module")
async def primary(replica_pair: ReplicaPair, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Backend]:
    async with fresh_database("postgresql", replica_pair.primary, tmp_path_factory.mktemp("primary")) as created:
        await replica_pair.caught_up()
        yield created


def titles(page: dict[str, Any]) -> list[str]:
    return [result["thread"]["title"] for result in page["data"]]


async def test_a_writer_finds_its_own_writes_and_the_replica_once_replayed(
    replica_pair: ReplicaPair, primary: Backend, tmp_path: Path
) -> None:
    writer = new_user()
    async with (
        instance(replica_pair, primary, tmp_path / "a") as first,
        instance(replica_pair, primary, tmp_path / "b") as second,
    ):
        thread = await first.create_thread(writer, title="Airships", messages=[{"content": "a blimp"}])
        await replica_pair.caught_up()
        await replica_pair.pause_replay()
        try:
            appended = await first.request(
                "POST", f"/api/threads/{thread['id']}/messages", user=writer, json={"content": "the zeppelin"}
            )
            assert appended.status_code == 201, appended.text
            position = {READ_AFTER: appended.headers[READ_AFTER]}
            behind = served("primary", "replica_behind")

            assert titles(await search(first, writer, "zeppelin")) == ["Airships"]
            told = await second.request("GET", "/api/search", user=writer, params={"q": "zeppelin"}, headers=position)
            assert told.status_code == 200 and titles(told.json()) == ["Airships"]
            assert served("primary", "replica_behind") - behind == 2

            # Not told: the replica answers, and it has not replayed the append.
            assert titles(await search(second, writer, "zeppelin")) == []
            assert titles(await search(second, writer, "blimp")) == ["Airships"]
        finally:
            await replica_pair.resume_replay()
        await replica_pair.caught_up()
        before = replica_reads()
        assert titles(await search(second, writer, "zeppelin")) == ["Airships"]
        assert replica_reads() - before == 1
