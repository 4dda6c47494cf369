"""The session settings every PostgreSQL session of the app runs under (its bounds: statement, lock and idle
timeouts; its isolation level; no JIT), and how they reach the session.

Straight to PostgreSQL (or through a pooler in session mode) they are startup parameters of each connection:
exact, per instance, free. Through a pooler in transaction mode a client's statements run on whichever server
session is free when its transaction starts, and PgBouncer refuses startup parameters it does not track
(1.18: "unsupported startup parameter"), or, told to ignore them, drops them silently. `SET LOCAL` at BEGIN
would reach explicit transactions only, never the units that run without BEGIN (reads, one-statement writes),
and would cost a statement per transaction. So there they are the defaults of the app's role in its database
(`ALTER ROLE … IN DATABASE … SET`), which `threadstore migrate` writes: every server session the pooler opens
for the role starts with them, and they hold for every statement run on it. They are the database's, not one
instance's: instances must agree on them, and a session the pooler opened before they changed keeps the old
ones until it reconnects (PgBouncer: `RECONNECT`, or `server_lifetime`). Readiness reports a mismatch.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from threadstore.config import Settings


@dataclass(frozen=True)
class SessionDefaults:
    statement_timeout_ms: int
    lock_timeout_ms: int
    idle_in_transaction_timeout_ms: int
    isolation_level: str  # as PostgreSQL spells default_transaction_isolation: "read committed"
    # Not a setting: JIT compilation is for long analytic queries. The planner's estimate for a page of a
    # deep branch (a recursive walk it cannot size) passes jit_above_cost, and compiling it then costs
    # hundreds of milliseconds on a query that runs in a few (docs/performance.md, "Branches").
    jit: str = "off"

    @classmethod
    def of(cls, settings: Settings) -> SessionDefaults:
        return cls(
            settings.statement_timeout_ms,
            settings.lock_timeout_ms,
            settings.idle_in_transaction_timeout_ms,
            settings.isolation_level.lower(),
        )

    def parameters(self) -> dict[str, str]:
        """As server parameters (the timeouts in milliseconds, PostgreSQL's unit for all three)."""
        return {
            "statement_timeout": str(self.statement_timeout_ms),
            "lock_timeout": str(self.lock_timeout_ms),
            "idle_in_transaction_session_timeout": str(self.idle_in_transaction_timeout_ms),
            "default_transaction_isolation": self.isolation_level,
            "jit": self.jit,
        }


# The timeouts of the migrator's own sessions: a migration may take longer than a request, and the advisory
# lock a second migrator waits on must not time out.
UNBOUNDED = {"statement_timeout": "0", "lock_timeout": "0", "idle_in_transaction_session_timeout": "0"}


async def write_role_defaults(conn: AsyncConnection, defaults: SessionDefaults) -> None:
    """Makes `defaults` those of the connected role in the connected database, for sessions that start from
    now on. A role may set its own defaults without any privilege."""
    database = (await conn.execute(text("SELECT current_database()"))).scalar_one()
    quoted = conn.dialect.identifier_preparer.quote(database)
    for name, value in defaults.parameters().items():
        # DDL takes no bind parameters: names are ours, values ints or a settings literal, quoted as literals.
        literal = value.replace("'", "''")
        await conn.execute(text(f"ALTER ROLE CURRENT_USER IN DATABASE {quoted} SET {name} = '{literal}'"))


_APPLIED = text(
    "SELECT name, setting FROM pg_settings WHERE name IN"
    " ('statement_timeout', 'lock_timeout', 'idle_in_transaction_session_timeout',"
    " 'default_transaction_isolation', 'jit')"
)


async def applied(conn: AsyncConnection) -> SessionDefaults:
    """What the session running the statement is under."""
    values = {row.name: row.setting for row in await conn.execute(_APPLIED)}
    return SessionDefaults(
        int(values["statement_timeout"]),
        int(values["lock_timeout"]),
        int(values["idle_in_transaction_session_timeout"]),
        values["default_transaction_isolation"],
        values["jit"],
    )
