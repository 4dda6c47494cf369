"""`threadstore reindex`: the search index rebuilt from the text, in batches, while the service runs.

A batch is read in one unit of work, its terms computed outside any (folding a few hundred texts is not free,
and nothing slow runs while a connection is held), and written in a second, short one, where each row still
applies: a finished message's text never changes, and a title's terms are written only if the title is still
the one read (a concurrent change wrote its own). Writers wait for at most one such write. `pending` indexes
only what has no terms yet: what `threadstore migrate` runs after migration 0008, and what the rows written
by an instance of the previous version meanwhile need."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from threadstore.db.unit_of_work import Database, Tx
from threadstore.search import repository
from threadstore.search.index import indexed

log = logging.getLogger(__name__)
BATCH = 500


@dataclass
class Progress:
    rows: dict[str, int] = field(default_factory=lambda: {"messages": 0, "threads": 0})
    batches: int = 0
    started: float = field(default_factory=time.monotonic)


async def _rows(tx: Tx, table: str, after: str, limit: int, pending: bool) -> list[Any]:
    return await repository.index_batch(tx, table, after, limit, pending)


async def _write(tx: Tx, table: str, values: list[dict[str, Any]]) -> None:
    await repository.set_terms(tx, table, values)


def _values(table: str, rows: list[Any]) -> list[dict[str, Any]]:
    if table == "messages":
        return [{"id": r["id"], "terms": indexed(r["user_id"], r["content"])} for r in rows]
    return [{"id": r["id"], "title": r["title"], "terms": indexed(r["user_id"], r["title"])} for r in rows]


async def reindex(database: Database, *, pending: bool = False, batch: int = BATCH) -> Progress:
    """Indexes every finished message and every title (`pending`: only those without terms) in batches."""
    progress = Progress()
    for table in ("threads", "messages"):
        after = ""
        while True:
            rows = await database.read(_rows, table, after, batch, pending)
            if not rows:
                break
            await database.write(_write, table, _values(table, rows))
            after = str(rows[-1]["id"])
            progress.rows[table] += len(rows)
            progress.batches += 1
            if progress.batches % 100 == 0:
                log.info("reindex: %s, %d rows so far", table, progress.rows[table])
    log.info(
        "reindex%s done: %d threads, %d messages in %d batches, %.1f s",
        " (pending)" if pending else "",
        progress.rows["threads"],
        progress.rows["messages"],
        progress.batches,
        time.monotonic() - progress.started,
    )
    return progress
