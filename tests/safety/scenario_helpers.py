"""Shared steps of the scenario tests: find an operation's number, fail it, check every invariant."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import httpx

from tests.conftest import Api, Backend, new_user
from tests.safety.faults import COMMIT, ERROR, Injector
from tests.safety.state import assert_clean_failure, assert_nothing_held, assert_service_works, snapshot

Request = Callable[[], Awaitable[httpx.Response]]
Match = Callable[[str], bool]


def is_commit(op: str) -> bool:
    return op == COMMIT


def writes(verb: str, table: str) -> Match:
    pattern = re.compile(rf"\b{verb}\s+(?:INTO\s+|FROM\s+)?{table}\b", re.IGNORECASE)
    return lambda op: bool(pattern.search(op))


def makes_durable(backend: Backend, table: str = "threads") -> Match:
    """Where a one-statement write commits: on PostgreSQL it is one autocommit statement (its UPDATE of
    `table`), committed as it completes, so failing that statement is failing the commit; else the COMMIT."""
    return writes("UPDATE", table) if backend.is_postgres else is_commit


def reads(table: str) -> Match:
    pattern = re.compile(rf"^\s*SELECT\b.*\bFROM\s+{table}\b", re.IGNORECASE | re.DOTALL)
    return lambda op: bool(pattern.search(op))


async def op_number(injector: Injector, request: Request, match: Match) -> int:
    """Runs a twin of the request to be failed and returns the number of its first operation that matches."""
    with injector.scope():
        response = await request()
    assert response.status_code < 300, response.text
    for number, op in enumerate(injector.ops, 1):
        if match(op):
            return number
    raise AssertionError(f"no operation matched among {injector.ops}")


async def assert_fails_cleanly(
    api: Api, injector: Injector, request: Request, number: int, flavour: str = ERROR
) -> httpx.Response:
    """Fails operation `number` of `request`: 5xx problem+json, the database exactly as before, nothing held,
    and the service still answers."""
    before = await snapshot(api.backend)
    with injector.scope(number, flavour):
        response = await request()
    assert injector.fired is not None, f"operation {number} was never reached: {injector.ops}"
    assert_clean_failure(response)
    assert await snapshot(api.backend) == before
    await assert_nothing_held(api)
    await assert_service_works(api, new_user())
    return response
