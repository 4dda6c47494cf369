"""An index built CONCURRENTLY by a migration (PostgreSQL), so writes go on during the build."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.engine import Connection


def build_index(bind: Connection, name: str, target: str, *, unique: bool = False) -> bool:
    """`CREATE [UNIQUE] INDEX CONCURRENTLY {name} ON {target}` unless a valid index of that name exists; run in
    an autocommit block. A build interrupted earlier leaves an invalid index behind, which would never be used:
    it is dropped and built again. Returns whether it built."""
    valid = bind.execute(
        sa.text(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname = :name AND pg_table_is_visible(c.oid)"
        ),
        {"name": name},
    ).scalar_one_or_none()
    if valid is True:
        return False
    if valid is False:
        bind.exec_driver_sql(f"DROP INDEX CONCURRENTLY {name}")
    bind.exec_driver_sql(f"CREATE {'UNIQUE ' if unique else ''}INDEX CONCURRENTLY {name} ON {target}")
    return True
