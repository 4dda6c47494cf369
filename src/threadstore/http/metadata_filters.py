"""`metadata.<key>=<value>` query parameters, as the thread list and search take them."""

from __future__ import annotations

from fastapi import Request

from threadstore.errors import Unprocessable

METADATA_FILTER_PREFIX = "metadata."
MAX_METADATA_FILTERS = 16  # each count is a distinct statement shape; bounded like everything else
METADATA_FILTERS_DESCRIPTION = (
    f"Also filters by metadata: `metadata.<key>=<value>` query parameters (at most {MAX_METADATA_FILTERS}) "
    "match threads whose metadata has that string value at that key."
)


def metadata_filters(request: Request) -> list[tuple[str, str]]:
    filters = []
    for name, value in request.query_params.multi_items():
        if name.startswith(METADATA_FILTER_PREFIX):
            key = name[len(METADATA_FILTER_PREFIX) :]
            if not key:
                raise Unprocessable(
                    "A metadata filter needs a key.", errors=[{"loc": ["query", name], "msg": "empty key"}]
                )
            filters.append((key, value))
    if len(filters) > MAX_METADATA_FILTERS:
        raise Unprocessable(
            f"At most {MAX_METADATA_FILTERS} metadata filters.",
            errors=[{"loc": ["query", "metadata"], "msg": "too many metadata filters"}],
        )
    return filters
