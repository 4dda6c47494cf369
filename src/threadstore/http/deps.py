"""Annotated dependency aliases shared by the routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from threadstore.config import Settings
from threadstore.db.unit_of_work import Database
from threadstore.limits import Limits

# Declared for the OpenAPI document; verification is ours (auto_error would answer 403, not 401).
_bearer = HTTPBearer(auto_error=False)


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_limits(request: Request) -> Limits:
    limits: Limits = request.app.state.limits
    return limits


def current_user(request: Request, _: HTTPAuthorizationCredentials | None = Security(_bearer)) -> str:
    user_id: str = request.app.state.verifier.user_id(request.headers.get("authorization"))
    return user_id


DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LimitsDep = Annotated[Limits, Depends(get_limits)]
CurrentUser = Annotated[str, Depends(current_user)]
