"""What is measured in PostgreSQL, and how, written once so the two systems cannot be measured differently.

Each side hands over a Probe: a connection of its own (asyncpg for threadstore, psycopg for LangGraph) to its
system's database, never the connection measured. Standard library only: both virtualenvs import it.
"""

from __future__ import annotations

from typing import Any, Protocol


class Probe(Protocol):
    async def value(self, sql: str) -> Any:
        """The first column of the first row."""
        ...

    async def rows(self, sql: str) -> list[tuple[Any, ...]]: ...


_LSN = "'0/0'::pg_lsn"


async def wal_position(probe: Probe) -> int:
    """The server-wide WAL write position, in bytes."""
    return int(await probe.value(f"SELECT (pg_current_wal_lsn() - {_LSN})::bigint"))


async def enable_own_wal(probe: Probe) -> bool:
    """Installs pg_walinspect in the system's database when the server has it (a contrib module since
    PostgreSQL 15). The server is shared: the WAL position moves with every other client's writes too, and
    only the records themselves tell whose they are."""
    if not await probe.value("SELECT count(*) > 0 FROM pg_available_extensions WHERE name = 'pg_walinspect'"):
        return False
    await probe.value("CREATE EXTENSION IF NOT EXISTS pg_walinspect")  # functions only: no table to count
    return True


# The records between two positions that belong to this database: those touching its relations (rel
# tablespace/database/relfilenode), and every record of a transaction that did, such as its commit. Record
# lengths leave out page headers and alignment, a few bytes per record less than the positions' difference.
_OWN_WAL = """
WITH db AS (
    SELECT 'rel [0-9]+/' || oid || '/' AS pattern FROM pg_database WHERE datname = current_database()
), records AS (
    SELECT xid, record_length, coalesce(block_ref ~ db.pattern, false) AS touches
    FROM db, pg_get_wal_records_info({lsn} + {start}, {lsn} + {stop})
)
SELECT coalesce(sum(record_length), 0)::bigint FROM records
WHERE touches OR xid IN (SELECT xid FROM records WHERE touches AND xid <> 0)
"""


async def own_wal(probe: Probe, start: int, end: int) -> tuple[int, int]:
    """This database's WAL bytes from `start` up to `end`, and the position read up to. pg_walinspect reads
    only flushed WAL; another client's unflushed records may lie before `end`, so the read can stop short,
    and the next read starts where this one stopped: no record of ours is skipped or counted twice."""
    stop = min(end, int(await probe.value(f"SELECT (pg_current_wal_flush_lsn() - {_LSN})::bigint")))
    if stop <= start:
        return 0, start
    return int(await probe.value(_OWN_WAL.format(lsn=_LSN, start=start, stop=stop))), stop


# Every table of the system's own database, with its indexes and TOAST: tables a later version adds are
# counted without a change here. Each system has a database to itself, so nothing else is in this list.
_TABLE_SIZES = """
SELECT tablename::text, pg_total_relation_size(format('%I.%I', schemaname, tablename)::regclass)::bigint
FROM pg_tables
WHERE schemaname NOT IN ('pg_catalog', 'information_schema')
ORDER BY tablename
"""


async def tables(probe: Probe) -> tuple[dict[str, int], dict[str, int]]:
    """Bytes and rows of every table of the system's database."""
    sizes = {str(name): int(size) for name, size in await probe.rows(_TABLE_SIZES)}
    # Names come from pg_tables, not from a user; double quotes keep their case.
    rows = {table: int(await probe.value(f'SELECT count(*) FROM "{table}"')) for table in sizes}
    return sizes, rows
