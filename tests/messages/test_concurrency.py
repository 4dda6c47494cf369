"""Concurrent appends to one thread: seqs are gapless and unique, and every append counts once."""

from __future__ import annotations

import asyncio

from tests.conftest import Api, Factory
from tests.http.problems import message_count

CONCURRENT = 30


async def test_concurrent_appends_get_gapless_unique_seqs(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    url = f"/api/threads/{thread['id']}/messages"
    responses = await asyncio.gather(
        *(api.request("POST", url, user=user, json={"content": f"m{i}"}) for i in range(CONCURRENT))
    )
    assert [r.status_code for r in responses] == [201] * CONCURRENT, [r.text for r in responses if r.status_code != 201]
    seqs = sorted(r.json()["seq"] for r in responses)
    assert seqs == list(range(1, CONCURRENT + 1))
    assert len({r.json()["id"] for r in responses}) == CONCURRENT

    after = (await api.request("GET", f"/api/threads/{thread['id']}", user=user)).json()
    assert after["message_count"] == CONCURRENT
    assert after["version"] == CONCURRENT + 1
    assert await message_count(api, thread["id"]) == CONCURRENT


async def test_concurrent_appends_are_listed_in_seq_order_with_their_content(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread()
    url = f"/api/threads/{thread['id']}/messages"
    responses = await asyncio.gather(
        *(api.request("POST", url, user=user, json={"content": f"m{i}"}) for i in range(CONCURRENT))
    )
    by_seq = {r.json()["seq"]: r.json()["content"] for r in responses}
    listed = (await api.request("GET", url, user=user, params={"limit": 100})).json()["data"]
    assert [m["seq"] for m in listed] == list(range(1, CONCURRENT + 1))
    assert {m["seq"]: m["content"] for m in listed} == by_seq
