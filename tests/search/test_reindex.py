"""`threadstore reindex` and the pending pass of `threadstore migrate`: the index rebuilt from the text equals
the one the writes kept, and a rebuild racing a title change never writes the old title's terms."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import Api, Factory
from tests.search.index_state import index_state
from threadstore.search import reindex as rebuild


async def _corpus(api: Api, user: str, create_thread: Factory) -> list[str]:
    ids = []
    for i in range(7):
        thread = await create_thread(
            title=f"Thread {i} über Café" if i % 3 else None,
            messages=[{"role": "user", "content": f"first message {i} 東京都 naïve"}],
        )
        ids.append(thread["id"])
        for j in range(i):
            await api.append(user, thread["id"], f"reply {j} in thread {i}: snowflake_{j} C++ résumé")
    # An unfinished reply (no terms until it ends) and one that ended.
    for status in ("in_progress", "completed"):
        r = await api.request(
            "POST",
            f"/api/threads/{ids[0]}/messages",
            user=user,
            json={"role": "assistant", "content": "streamed words", "status": "in_progress"},
        )
        if status == "completed":
            mid = r.json()["id"]
            await api.request("PATCH", f"/api/threads/{ids[0]}/messages/{mid}", user=user, json={"status": status})
    return ids


async def _search(api: Api, user: str, q: str) -> list[str]:
    r = await api.request("GET", "/api/search", user=user, params={"q": q, "limit": 50})
    assert r.status_code == 200, r.text
    return sorted(x["thread"]["id"] for x in r.json()["data"])


async def test_a_rebuild_from_nothing_equals_the_live_index(api: Api, user: str, create_thread: Factory) -> None:
    await _corpus(api, user, create_thread)
    live = await index_state(api.database)
    found = await _search(api, user, "snowflake_2")
    assert found
    async with api.database.engine.begin() as conn:
        await conn.execute(text("UPDATE messages SET search_terms = NULL"))
        await conn.execute(text("UPDATE threads SET search_terms = NULL"))
    assert await _search(api, user, "snowflake_2") == []
    progress = await rebuild.reindex(api.database, pending=True, batch=3)
    assert progress.rows["messages"] > 0 and progress.batches > 3
    assert await index_state(api.database) == live
    assert await _search(api, user, "snowflake_2") == found
    # Nothing pending now; a full rebuild changes nothing.
    assert (await rebuild.reindex(api.database, pending=True)).rows == {"messages": 0, "threads": 0}
    await rebuild.reindex(api.database, batch=4)
    assert await index_state(api.database) == live


async def test_a_full_rebuild_repairs_wrong_terms(api: Api, user: str, create_thread: Factory) -> None:
    await _corpus(api, user, create_thread)
    live = await index_state(api.database)
    wrong = "'#0':1" if api.database.dialect == "postgresql" else "bogus"
    async with api.database.engine.begin() as conn:
        await conn.execute(text("UPDATE messages SET search_terms = :w WHERE status <> 'in_progress'"), {"w": wrong})
    assert await index_state(api.database) != live
    await rebuild.reindex(api.database, batch=5)
    assert await index_state(api.database) == live


async def test_a_title_changed_during_a_batch_keeps_its_own_terms(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread(title="alpha title")
    async with api.database.engine.begin() as conn:
        await conn.execute(text("UPDATE threads SET search_terms = NULL WHERE id = :id"), {"id": thread["id"]})
    pending = await api.database.read(rebuild._rows, "threads", "", 1000, True)
    rows = [r for r in pending if r["id"] == thread["id"]]
    assert len(rows) == 1
    r = await api.request("PATCH", f"/api/threads/{thread['id']}", user=user, json={"title": "omega title"})
    assert r.status_code == 200, r.text
    await api.database.write(rebuild._write, "threads", rebuild._values("threads", rows))
    assert await _search(api, user, "omega") == [thread["id"]]
    assert await _search(api, user, "alpha") == []
