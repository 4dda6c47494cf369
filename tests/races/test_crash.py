"""The acknowledged-write audit under kill -9: a write load (creates with and without initial messages,
appends and creates with and without Idempotency-Key, metadata patches) runs against a server process while
the server, or PostgreSQL, is killed at random moments and restarted. Afterwards every 2xx answer must be
in the database exactly as answered, nothing half-written, and idempotent retries must replay the answer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from scripts.torture.client import Client, torture_server
from scripts.torture.crash import SETTINGS, CrashResult, Load, audit, postgres_killer, run_crash_audit, server_killer
from scripts.torture.dbview import Inspector
from sqlalchemy import text

from tests.conftest import fresh_database
from tests.pg_server import PgServer

DURATION = 10.0  # seconds of load per scenario; the long run is `python -m scripts.torture`
KILL_INTERVAL = (1.0, 3.0)
MIN_KILLS = 3


def check(result: CrashResult) -> None:
    print(
        f"{result.name}: {result.operations} operations, {result.acknowledged} acknowledged, {result.unknown} "
        f"unknown, {result.kills} kills, {result.audited} checks, {len(result.violations)} violations"
    )
    assert result.violations == [], result.violations[:20]
    assert result.kills >= MIN_KILLS
    assert result.acknowledged >= 50, "too little load was acknowledged to audit"
    assert result.unknown > 0, "no request was in flight at a kill"


@pytest.mark.parametrize("kind", ["postgresql", "sqlite"])
async def test_server_sigkill_loses_no_acknowledged_write(
    kind: str, pg_server: PgServer | None, tmp_path: Path
) -> None:
    async with fresh_database(kind, pg_server, tmp_path) as backend:
        server = torture_server(tmp_path, backend, **SETTINGS)
        db = Inspector(backend.url)
        try:
            result = await run_crash_audit(
                f"server SIGKILL ({kind})",
                server,
                db,
                duration=DURATION,
                kill=server_killer(server),
                interval=KILL_INTERVAL,
                min_kills=MIN_KILLS,
            )
        finally:
            await server.aclose()
            await db.dispose()
    check(result)


async def test_postgres_immediate_stop_loses_no_acknowledged_write(private_pg: PgServer, tmp_path: Path) -> None:
    async with fresh_database("postgresql", private_pg, tmp_path) as backend:
        server = torture_server(tmp_path, backend, **SETTINGS)
        db = Inspector(backend.url)
        try:
            result = await run_crash_audit(
                "PostgreSQL stop -m immediate",
                server,
                db,
                duration=DURATION,
                kill=postgres_killer(lambda: private_pg.pg_ctl_stop("immediate"), private_pg.pg_ctl_start),
                interval=KILL_INTERVAL,
                min_kills=MIN_KILLS,
            )
        finally:
            await server.aclose()
            await db.dispose()
    check(result)


async def test_the_audit_catches_a_lost_write_and_a_half_written_thread(tmp_path: Path) -> None:
    """The audit is only evidence if it can fail: remove an acknowledged message, strip a thread of its initial
    messages, and take an acknowledged delta from an unfinished and from a closed reply behind the server's back,
    and it must report each."""
    async with fresh_database("sqlite", None, tmp_path) as backend:
        server = torture_server(tmp_path, backend, **SETTINGS)
        db = Inspector(backend.url)
        client = Client(server.base_url)
        result = CrashResult("tampered")
        load = Load(client, result, workers=6)
        try:
            await server.start()

            async def no_kills() -> None:
                await load.stop.wait()

            await load.run(no_kills, 3.0)
            ledger = load.ledger
            # In threads no branch delete touched: there a missing message is a loss, whatever else happened.
            message = next(
                m
                for m in ledger.messages.values()
                if m["content"].startswith("a-") and m["thread_id"] not in ledger.deleting
            )
            thread = next(
                t
                for t in ledger.threads.values()
                if len(ledger.creates[t["title"]].get("messages", [])) >= 2
                and t["id"] not in ledger.deleting
                and t["id"] != message["thread_id"]
            )
            # A streamed reply whose last acknowledged delta goes missing: a delta row of an unfinished one, the
            # end of a closed one's content.
            replies = [
                (message_id, reply)
                for message_id, reply in ledger.replies.items()
                if reply.acked
                and reply.thread_id not in ledger.deleting
                and reply.thread_id != thread["id"]  # whose messages all go below
                and reply.pending is None
            ]
            unfinished = next(m for m, r in replies if r.closing is None and not r.swept)
            closed = next(m for m, r in replies if r.closed is not None)
            async with db.engine.begin() as conn:
                await conn.execute(
                    text("DELETE FROM message_deltas WHERE message_id = :id AND start = :start"),
                    {"id": unfinished, "start": ledger.replies[unfinished].acked[-1][0]},
                )
                await conn.execute(
                    text("UPDATE messages SET content = substr(content, 1, length(content) - 1) WHERE id = :id"),
                    {"id": closed},
                )
                await conn.execute(text("DELETE FROM messages WHERE id = :id"), {"id": message["id"]})
                await conn.execute(text("DELETE FROM messages WHERE thread_id = :id"), {"id": thread["id"]})
                await conn.execute(text("UPDATE threads SET message_count = 0 WHERE id = :id"), {"id": thread["id"]})
            await audit(client, db, ledger, result)
        finally:
            await client.aclose()
            await server.aclose()
            await db.dispose()
    found = "\n".join(result.violations)
    assert f"acknowledged message {message['id']} differs" in found, found
    assert f"thread {thread['id']} lacks its initial messages" in found, found
    assert f"reply {unfinished} lacks an acknowledged delta" in found, found
    assert f"reply {closed} lacks an acknowledged delta" in found, found
