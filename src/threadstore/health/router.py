"""Liveness, readiness and metrics: unauthenticated, for orchestrators and scrapers."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, Field

from threadstore.db.bounds import SessionDefaults
from threadstore.errors import DomainError, ServiceUnavailable
from threadstore.health import service
from threadstore.http.deps import DatabaseDep
from threadstore.http.openapi import problem
from threadstore.http.responses import json_response

router = APIRouter(tags=["health"])
log = logging.getLogger("threadstore.health")


class Alive(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    schema_revision: str = Field(alias="schema", description="The database schema's migration revision.")


@router.get("/healthz", operation_id="healthz", response_model=Alive)
async def healthz() -> Response:
    return json_response({"status": "ok"})


@router.get(
    "/readyz",
    operation_id="readyz",
    response_model=Ready,
    responses=problem(
        503, "Not ready: the database is unreachable or its schema is not current, or the server is shutting down."
    ),
)
async def readyz(request: Request, database: DatabaseDep) -> Response:
    if getattr(request.app.state, "shutting_down", False):
        raise ServiceUnavailable("The server is shutting down.")
    try:
        revision = await database.read(service.schema_revision)
        settings = request.app.state.settings
        # Through a transaction pooler the bounds are the database's (db/bounds.py): unready when they are
        # not this instance's, rather than serving with bounds nobody chose.
        pooled = settings.database_pool_mode == "transaction"
        applied = await database.read(service.session_defaults) if pooled else None
    except DomainError as error:
        raise ServiceUnavailable("The database is not reachable.") from error
    expected = request.app.state.schema_head
    if revision != expected:
        log.warning("schema revision %s is not the expected %s", revision, expected)
        raise ServiceUnavailable("The database schema is not current; run `threadstore migrate`.")
    if applied is not None and applied != SessionDefaults.of(settings):
        log.warning("the database's session defaults %s are not this instance's settings", applied)
        raise ServiceUnavailable(
            "The database's session bounds are not this instance's; run `threadstore migrate`, then reconnect"
            " the pooler."
        )
    return json_response({"status": "ready", "schema": revision})


@router.get(
    "/metrics",
    operation_id="metrics",
    response_class=PlainTextResponse,
    responses={200: {"description": "Prometheus text exposition format."}},
)
async def metrics_endpoint() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
