"""Storms of 32 concurrent HTTP clients, released together, against a real server process on SQLite, on
PostgreSQL at READ COMMITTED and on PostgreSQL at SERIALIZABLE: every family's invariant holds on each.

At SERIALIZABLE the storms cause serialization failures (40001) that the transaction owner re-runs; the
families count a 503 (attempts exhausted) as a violation, so they also prove the retries absorb them.
"""

from __future__ import annotations

import pytest
from scripts.torture.family import Race
from scripts.torture.races import FAMILIES

from tests.races.conftest import Target

pytestmark = pytest.mark.through_pgbouncer

CLIENTS = 32


@pytest.mark.parametrize("family", list(FAMILIES))
async def test_family_invariant_holds(target: Target, family: str) -> None:
    await target.client.warm(CLIENTS)
    result = await FAMILIES[family](Race(target.client, target.db, clients=CLIENTS, llm=target.llm))
    assert result.violations == [], result.violations
    assert 503 not in result.statuses and 500 not in result.statuses, result.statuses
