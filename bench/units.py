"""What one unit of work costs in-process, without HTTP: threadstore's service functions through
`Database.write/read` on PostgreSQL, each write as it runs and as a transaction, and raw asyncpg for the floor.

    .venv/bin/python bench/units.py [--database-url URL] [--iterations N]

Sequential on one connection, so wall time is mostly round trips and CPU time is this process's cost per
unit (SQLAlchemy, the unit of work, the service rules). Makes and drops its own database. Prints a table."""

from __future__ import annotations

import argparse
import time
from collections.abc import Awaitable, Callable
from itertools import count
from typing import Any

import asyncpg
import orjson
import uvloop
from sqlalchemy.engine import make_url

from threadstore.config import Settings
from threadstore.db import migrate
from threadstore.db.unit_of_work import Database
from threadstore.idempotency import service as idempotency
from threadstore.idempotency.schemas import IdempotentRequest, StoredResponse
from threadstore.limits import Limits
from threadstore.messages import service as messages
from threadstore.messages.schemas import MessageCreate
from threadstore.threads import service
from threadstore.threads.schemas import ThreadCreate, ThreadPatch

NAME = "threadstore_bench_units"
USER = "units_user"


async def measure(label: str, unit: Callable[[], Awaitable[Any]], iterations: int) -> None:
    for _ in range(iterations // 10):  # warm: statement caches, prepared statements, the pool
        await unit()
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        await unit()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"| {label} | {1e3 * wall / iterations:.3f} | {1e3 * cpu / iterations:.3f} |")


async def main(database_url: str, iterations: int) -> None:
    admin = make_url(database_url)
    admin_dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    dsn = admin.set(drivername="postgresql", database=NAME).render_as_string(hide_password=False)
    conn = await asyncpg.connect(admin_dsn)
    await conn.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
    await conn.execute(f'CREATE DATABASE "{NAME}"')
    await conn.close()
    url = admin.set(drivername="postgresql+asyncpg", database=NAME).render_as_string(hide_password=False)
    try:
        await migrate.upgrade(url)
        settings = Settings(database_url=url)
        database, limits = Database.open(settings), Limits.from_settings(settings)
        engine = database.engine
        body = ThreadCreate(title="units", metadata={"source": "units"})
        thread = await database.write(service.create, USER, body, limits)
        thread_id, n = thread["id"], count()
        three = ThreadCreate(title="units", messages=[MessageCreate(content="How long is the flight?")] * 3)
        message = MessageCreate(content="How long is the flight?", metadata={"source": "units"})

        def stored(message: dict[str, Any]) -> StoredResponse:
            return StoredResponse(201, orjson.dumps(message), thread_id=message["thread_id"])

        def keyed() -> IdempotentRequest:
            return IdempotentRequest(USER, f"units-{next(n)}", "fingerprint")

        def flat() -> ThreadPatch:
            return ThreadPatch(metadata={"bench": str(next(n))})

        def nested() -> ThreadPatch:
            return ThreadPatch(metadata={"bench": {"n": str(next(n))}})

        print("| unit | wall ms | CPU ms |\n|---|---:|---:|")
        # A lambda around a service function hides its `one_write` declaration: the same work as a transaction.
        units: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("get thread (read, no transaction)", lambda: database.read(service.get, USER, thread_id)),
            ("create thread, one statement", lambda: database.write(service.create, USER, body, limits)),
            (
                "create thread, same in BEGIN … COMMIT",
                lambda: database.write(lambda tx: service.create(tx, USER, body, limits)),
            ),
            (
                "create thread with 3 messages, one statement",
                lambda: database.write(service.create, USER, three, limits),
            ),
            (
                "append message, one statement",
                lambda: database.write(messages.append, USER, thread_id, message, limits),
            ),
            (
                "append message, same in BEGIN … COMMIT",
                lambda: database.write(lambda tx: messages.append(tx, USER, thread_id, message, limits)),
            ),
            (
                "append message with Idempotency-Key (lock, lookup, append, record; BEGIN … COMMIT)",
                lambda: idempotency.write_once(
                    database, keyed(), 3600, stored, messages.append, USER, thread_id, message, limits
                ),
            ),
            (
                "patch flat metadata, read + compare-and-set",
                lambda: database.write(service.patch, USER, thread_id, flat(), None, limits),
            ),
            (
                "patch nested metadata, read + compare-and-set",
                lambda: database.write(service.patch, USER, thread_id, nested(), None, limits),
            ),
            (
                "patch flat metadata, locked read + UPDATE in BEGIN … COMMIT",
                lambda: database.write(lambda tx: service.patch(tx, USER, thread_id, flat(), None, limits)),
            ),
        ]
        for label, unit in units:
            # Each unit on a thread of its own: one thread updated 10,000s of times would measure its bloat.
            thread_id = (await database.write(service.create, USER, body, limits))["id"]
            await measure(label, unit, iterations)
        thread_id = (await database.write(service.create, USER, body, limits))["id"]
        await engine.dispose()
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        select = "SELECT * FROM threads WHERE id = $1 AND user_id = $2"
        await measure("raw asyncpg: one SELECT", lambda: pool.fetchrow(select, thread_id, USER), iterations)
        update = (
            "UPDATE threads SET metadata = metadata || $3::jsonb, version = version + 1 WHERE id = $1 AND user_id = $2"
        )
        patch = '{"raw": "1"}'
        await measure("raw asyncpg: one UPDATE", lambda: pool.execute(update, thread_id, USER, patch), iterations)
        await pool.close()
    finally:
        conn = await asyncpg.connect(admin_dsn)
        await conn.execute(f'DROP DATABASE IF EXISTS "{NAME}" WITH (FORCE)')
        await conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    uvloop.run(main(args.database_url, args.iterations))
