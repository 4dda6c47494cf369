"""The application factory: wires settings, the engine, the transaction owner and the routers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp

from threadstore import logs, maintenance, metrics
from threadstore.apidocs import router as apidocs
from threadstore.apidocs.router import router as apidocs_router
from threadstore.auth import TokenVerifier
from threadstore.config import Settings, load_settings
from threadstore.db import migrate
from threadstore.db.replica import LastWrites
from threadstore.db.unit_of_work import Database
from threadstore.errors import install_error_handlers
from threadstore.events.delivery import EventDelivery
from threadstore.events.router import router as events_router
from threadstore.health.router import router as health_router
from threadstore.http import openapi
from threadstore.http.cors import cors
from threadstore.http.middleware import RequestContextMiddleware
from threadstore.http.read_after import ReadAfterMiddleware
from threadstore.limits import Limits
from threadstore.messages.router import router as messages_router
from threadstore.search.router import router as search_router
from threadstore.threads.router import router as threads_router
from threadstore.titles.generator import build_title_generator
from threadstore.webapp import router as webapp

log = logging.getLogger("threadstore")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    secret, secret_note = settings.require_jwt_secret()
    if secret_note:
        log.info(secret_note)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.database = database = Database.open(settings)
        engine = database.engine
        app.state.title_generator = build_title_generator(
            settings.llm_base_url,
            settings.llm_model,
            settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            settings.llm_timeout,
        )
        app.state.shutting_down = False
        metrics.watch_pool(engine.pool.checkedout)  # type: ignore[attr-defined]
        housekeeping = asyncio.create_task(
            maintenance.run_forever(
                app.state.database,
                settings.idempotency_ttl_seconds,
                settings.maintenance_interval_seconds,
                settings.event_retention_seconds,
            ),
            name="maintenance-pruning",
        )
        stale_sweep = asyncio.create_task(
            maintenance.end_stale_forever(database, settings.stale_message_seconds), name="maintenance-stale-replies"
        )
        delivery = EventDelivery(app.state.database, settings)
        app.state.event_delivery = delivery
        app.state.event_hub = delivery.hub
        app.state.event_publisher = delivery.publisher
        delivery.start()
        try:
            yield
        finally:
            app.state.shutting_down = True
            await delivery.stop()  # ends the event streams first: they are the responses that never finish
            for task in (housekeeping, stale_sweep):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await app.state.title_generator.aclose()
            await database.dispose()

    app = FastAPI(
        title="threadstore",
        version="1",
        summary="The conversation store behind AI chat applications.",
        lifespan=lifespan,
        # Starlette would redirect "/api/threads/" to an absolute URL built from the request's Host header:
        # a redirect anyone can aim at another host. The contract's paths have no trailing slash; 404.
        redirect_slashes=False,
        # Served by apidocs instead, from the package: FastAPI's own pages load their scripts from a CDN.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.limits = Limits.from_settings(settings)
    app.state.verifier = TokenVerifier(secret, require_exp=settings.require_exp)
    app.state.schema_head = migrate.head_revision()
    install_error_handlers(app)
    if settings.read_database_url:
        app.add_middleware(ReadAfterMiddleware, last_writes=LastWrites())
    app.include_router(health_router)
    app.include_router(threads_router)
    app.include_router(messages_router)
    app.include_router(events_router)
    app.include_router(search_router)
    app.include_router(apidocs_router)
    app.mount(apidocs.ASSETS_PATH, apidocs.assets(), name="docs-assets")
    app.include_router(webapp.router)
    app.mount(webapp.APP_PATH, webapp.assets(), name="webapp")
    openapi.install(app, app.state.limits)
    return app


def build_asgi(settings: Settings) -> tuple[FastAPI, ASGIApp]:
    """The FastAPI app and the ASGI app that serves it: the FastAPI app inside the request-context
    middleware (outermost, so even errors raised by Starlette's own error middleware leave with a request
    id). Every server of the app is built here, `threadstore serve` and the tests alike; the FastAPI app is
    returned too because its state (the database, the event hub) is what tests look at."""
    app = create_app(settings)
    asgi: ASGIApp = RequestContextMiddleware(app, max_body_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        # Outside everything, so every answer to a listed origin carries its headers, errors included (an
        # early 413 or 415 of the request-context middleware, a last-resort 500).
        asgi = cors(asgi, settings.cors_origins)
    return app, asgi


def create_asgi_app(settings: Settings | None = None) -> ASGIApp:
    """The app `threadstore serve` runs (uvicorn's factory), with the process-wide setup it needs."""
    settings = settings or load_settings()
    # Here, not only in the CLI: with --workers N each worker is a fresh process that imports only this.
    logs.configure(settings.log_level)
    _, app = build_asgi(settings)
    # What is built by now (modules, the app, its routes) lives as long as the process: frozen out of the
    # collector's reach, full collections stop walking it; under load their pauses were most of the p99
    # (docs/performance.md). Not in build_asgi: tests build many.
    gc.collect()
    gc.freeze()
    # A request's objects are freed by reference counting; the collector is for cycles, which are few here.
    # At the default threshold it ran many times a second under load for almost nothing found; at this one
    # it runs every few seconds (docs/performance.md has the figures; the soak shows memory flat).
    gc.set_threshold(GC_THRESHOLD, 10, 10)
    return app


GC_THRESHOLD = 20_000
