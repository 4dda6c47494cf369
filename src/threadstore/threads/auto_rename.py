"""Auto-rename: read in one unit of work, generate with nothing held, apply in another unit of work.

The title generator may take seconds (an LLM over HTTP); holding a pooled connection or an open
transaction across it is how pools run dry and "idle in transaction" backends pile up. The write applies
only if the thread's version did not move in between, so a manual rename is never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from threadstore import metrics
from threadstore.db.unit_of_work import Database
from threadstore.threads import service
from threadstore.titles.generator import TitleGenerator


@dataclass(frozen=True)
class Renamed:
    thread: dict[str, Any]
    source: str


async def auto_rename(database: Database, generator: TitleGenerator, user_id: str, thread_id: str) -> Renamed:
    source = await database.read(lambda tx: service.rename_source(tx, user_id, thread_id))
    title = await generator.generate(source.text)
    metrics.TITLE_SOURCES.labels(title.source).inc()
    thread = await database.write(lambda tx: service.apply_title(tx, user_id, thread_id, title.text, source.version))
    return Renamed(thread=thread, source=title.source)
