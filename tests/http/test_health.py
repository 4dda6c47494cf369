"""/healthz, /readyz: liveness without the database; readiness with the database and a current schema."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, text

from tests.conftest import Api
from tests.http.problems import assert_problem
from threadstore.db import migrate


async def test_healthz_is_200(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_healthz_touches_no_database(api: Api) -> None:
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    engine = api.database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        response = await api.client.get("/healthz")
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert response.status_code == 200
    assert statements == []


async def test_readyz_is_200_with_the_schema_revision(api: Api) -> None:
    response = await api.client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["schema"] == migrate.head_revision() is not None


async def test_readyz_is_503_with_retry_after_when_the_schema_is_not_current(api: Api) -> None:
    head = migrate.head_revision()
    async with api.database.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    try:
        response = await api.client.get("/readyz")
    finally:
        async with api.database.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
    body = assert_problem(response, 503)
    assert int(response.headers["retry-after"]) >= 1
    assert "old" not in body["detail"]
    assert (await api.client.get("/readyz")).status_code == 200


async def test_readyz_is_503_while_shutting_down(api: Api) -> None:
    api.app.state.shutting_down = True
    try:
        response = await api.client.get("/readyz")
    finally:
        api.app.state.shutting_down = False
    assert_problem(response, 503)
    assert response.headers.get("retry-after")
    assert (await api.client.get("/healthz")).status_code == 200
