"""Auto-rename: read in one unit of work, generate with nothing held, apply in another unit of work.

The title generator may take seconds (an LLM over HTTP); holding a pooled connection or an open
transaction across it is how pools run dry and "idle in transaction" backends pile up. The write applies
only if the thread's version did not move in between, so a manual rename is never overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from threadstore import disguise, metrics
from threadstore.db.unit_of_work import Database
from threadstore.limits import Limits
from threadstore.threads import service
from threadstore.titles.cleaning import truncate_title
from threadstore.titles.generator import GeneratedTitle, TitleGenerator


@dataclass(frozen=True)
class Renamed:
    thread: dict[str, Any]
    source: str


async def auto_rename(
    database: Database, generator: TitleGenerator, limits: Limits, user_id: str, thread_id: str
) -> Renamed:
    source = await database.read(service.rename_source, user_id, thread_id)
    generated = await generator.generate(source.text)
    # A configured title limit below the generator's 80 characters still binds generated titles. The text of
    # a message is stored as written, so what a title may not hold is taken out here rather than refused.
    text = truncate_title(disguise.strip(generated.text), max_words=8, max_chars=limits.title_chars)
    title = GeneratedTitle(text, generated.source)
    metrics.TITLE_SOURCES.labels(title.source).inc()
    thread = await database.write(service.apply_title, user_id, thread_id, title.text, source.version)
    return Renamed(thread=thread, source=title.source)
