"""Conditions on a thread row that more than one domain's listing applies (the thread list, search)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, bindparam, exists, literal, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import func

from threadstore.db.tables import threads


def metadata_equals(dialect: str, i: int) -> ColumnElement[bool]:
    if dialect == "sqlite":
        each = func.json_each(threads.c.metadata).table_valued("key", "type", "value")
        return exists(
            select(literal(1))
            .select_from(each)
            .where(each.c.key == bindparam(f"p_mk{i}"), each.c.type == "text", each.c.value == bindparam(f"p_mv{i}"))
        )
    # Containment matches string values exactly (a number 5 never equals "5").
    return threads.c.metadata.op("@>")(bindparam(f"p_m{i}", type_=JSONB()))


def metadata_params(dialect: str, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """The bind parameters of `metadata_equals(dialect, i)` for each (key, value) of `pairs`."""
    params: dict[str, Any] = {}
    for i, (key, value) in enumerate(pairs):
        if dialect == "sqlite":
            params[f"p_mk{i}"], params[f"p_mv{i}"] = key, value
        else:
            params[f"p_m{i}"] = {key: value}
    return params
