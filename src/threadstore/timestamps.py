"""RFC 3339 rendering of stored timestamps: UTC, millisecond precision, `Z` suffix."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import Field

# How responses carry a timestamp (rfc3339 below), for the OpenAPI document.
Timestamp = Annotated[
    str, Field(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$", json_schema_extra={"format": "date-time"})
]
TimestampOrNull = Timestamp | None


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rfc3339_or_none(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)
