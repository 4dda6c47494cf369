"""Annotated dependency aliases shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Path, Query, Request
from pydantic.json_schema import SkipJsonSchema

from threadstore.auth import Identity, TokenVerifier
from threadstore.config import Settings
from threadstore.cursors import CURSOR_PATTERN
from threadstore.db.unit_of_work import Database
from threadstore.http.read_after import note_user
from threadstore.ids import id_pattern
from threadstore.limits import Limits


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


async def get_verifier(request: Request) -> TokenVerifier:
    verifier: TokenVerifier = request.app.state.verifier
    return verifier


async def current_user(request: Request) -> str:
    # The bearer scheme is declared in the OpenAPI document by app.py; a FastAPI security dependency here
    # would cost a dependency resolution per request and answer 403 where the contract says 401.
    user_id: str = request.app.state.verifier.user_id(request.headers.get("authorization"))
    note_user(user_id)
    return user_id


async def current_identity(request: Request) -> Identity:
    """The caller and when their token expires: for a response that outlives the request (an event stream)."""
    identity: Identity = request.app.state.verifier.verify(request.headers.get("authorization"))
    return identity


EVENTS_COOKIE = "threadstore_events"


async def events_identity(request: Request) -> Identity:
    """`GET /api/events`: the bearer token, or, with no Authorization header, the events cookie (a browser's
    EventSource cannot send a header). The cookie's token opens this stream and no other request."""
    verifier = request.app.state.verifier
    authorization = request.headers.get("authorization")
    if authorization is not None:
        identity: Identity = verifier.verify(authorization)
    else:
        identity = verifier.verify_events_cookie(request.cookies.get(EVENTS_COOKIE))
    return identity


DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LimitsDep = Annotated[Limits, Depends(get_limits)]
VerifierDep = Annotated[TokenVerifier, Depends(get_verifier)]
CurrentUser = Annotated[str, Depends(current_user)]
CurrentIdentity = Annotated[Identity, Depends(current_identity)]
EventsIdentity = Annotated[Identity, Depends(events_identity)]


# Parameters several routers take, documented here and checked where they are read: a thread id is not
# validated (any other string names no thread: 404 like a missing one, never 422); a cursor is checked when it
# is decoded (cursors.py), so that its alphabet and its content fail alike (422, loc ["query", "cursor"]).
ThreadIdPath = Annotated[
    str,
    Path(description="A thread id, as the API returned it.", json_schema_extra={"pattern": id_pattern("thr")}),
]
MessageIdPath = Annotated[
    str,
    Path(description="A message id, as the API returned it.", json_schema_extra={"pattern": id_pattern("msg")}),
]
CursorQuery = Annotated[
    str | SkipJsonSchema[None],
    Query(
        description="The `next_cursor` of the previous page; any other value is 422.",
        json_schema_extra={"pattern": CURSOR_PATTERN},
    ),
]
LimitQuery = Annotated[int, Query(ge=1, le=100, description="The most items on one page.")]
