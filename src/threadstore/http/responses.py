"""Response builders: orjson bytes straight into the response, skipping FastAPI's re-validation on hot paths."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from starlette.responses import Response

JSON = "application/json"


def json_bytes(payload: Any) -> bytes:
    return orjson.dumps(payload)


def json_response(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload), status_code=status, media_type=JSON, headers=dict(headers or {}))


def etag(version: int) -> str:
    return f'"{version}"'


def thread_response(thread: Mapping[str, Any], status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return json_response(thread, status, {"ETag": etag(thread["version"]), **(headers or {})})
