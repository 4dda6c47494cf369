"""RFC 7396 JSON merge patch, producing a new document (the stored one is never mutated in place)."""

from __future__ import annotations

from typing import Any

import orjson


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def same_json(a: Any, b: Any) -> bool:
    """Whether two documents are the same JSON. Not `a == b`: Python holds True == 1 and 0 == False, so a change
    of JSON type would go unseen."""
    option = orjson.OPT_SORT_KEYS
    return orjson.dumps(a, option=option) == orjson.dumps(b, option=option)
