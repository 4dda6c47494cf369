"""The endpoints measured, the request lines each app gets for them, and the cursors found by walking pages."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from load import Line, write_lines
from seeding import BIG_OWNER, DEEP_PAGE, PAGE_SIZE


@dataclass(frozen=True)
class Endpoint:
    key: str
    label: str
    request: str  # what is sent, as a reader of the table needs it
    yardstick_note: str = "same endpoint"


ENDPOINTS = [
    Endpoint("get_thread", "get thread", "GET /api/threads/{id}"),
    Endpoint("list_threads", "list threads, page 1", "GET /api/threads"),
    Endpoint("list_threads_deep", f"list threads, page {DEEP_PAGE}", "GET /api/threads?cursor=<page 50>"),
    Endpoint("messages_first", "messages of 100k thread, first page", "GET /api/threads/{big}/messages"),
    Endpoint(
        "messages_last", "messages of 100k thread, last page", "GET /api/threads/{big}/messages?cursor=<seq n-50>"
    ),
    Endpoint("messages_newest", "messages of 100k thread, order=desc", "GET /api/threads/{big}/messages?order=desc"),
    Endpoint("create_thread", "create thread", "POST /api/threads"),
    Endpoint("append_message", "append message", "POST /api/threads/{id}/messages"),
    Endpoint(
        "patch_metadata",
        "patch metadata",
        "PATCH /api/threads/{id}",
        "same endpoint; the yardstick does a shallow `metadata || $1` in one UPDATE, threadstore an RFC 7396 "
        "merge (flat, as here: one UPDATE with limits, version check and its event row in the same statement)",
    ),
]
BY_KEY = {e.key: e for e in ENDPOINTS}

APPEND_BODY = '{"role": "user", "content": "benchmark message %R"}'
CREATE_BODY = '{"title": "bench %R", "metadata": {"source": "bench", "n": "%R"}}'
PATCH_BODY = '{"metadata": {"bench": "%R"}}'

# Share of each endpoint in the soak's mixed load.
SOAK_WEIGHTS = {
    "get_thread": 25,
    "list_threads": 15,
    "list_threads_deep": 5,
    "messages_first": 5,
    "messages_last": 5,
    "messages_newest": 5,
    "create_thread": 5,
    "append_message": 20,
    "patch_metadata": 15,
}


@dataclass(frozen=True)
class AppData:
    """What one app's request lines are made from."""

    threads: list[tuple[str, str]]  # (user_id, thread_id) of regular users
    big_thread: str
    deep_cursors: dict[str, str]  # deep user id -> cursor of page 50
    last_page_cursor: str


def lines_for(key: str, data: AppData, tokens: dict[str, str]) -> list[Line]:
    big = f"/api/threads/{data.big_thread}/messages"
    users = sorted({user for user, _ in data.threads})
    builders: dict[str, Callable[[], list[Line]]] = {
        "get_thread": lambda: [Line("GET", f"/api/threads/{t}", tokens[u]) for u, t in data.threads],
        "list_threads": lambda: [Line("GET", "/api/threads", tokens[u]) for u in users],
        "list_threads_deep": lambda: [
            Line("GET", f"/api/threads?cursor={c}", tokens[u]) for u, c in sorted(data.deep_cursors.items())
        ],
        "messages_first": lambda: [Line("GET", big, tokens[BIG_OWNER])],
        "messages_last": lambda: [Line("GET", f"{big}?cursor={data.last_page_cursor}", tokens[BIG_OWNER])],
        "messages_newest": lambda: [Line("GET", f"{big}?order=desc", tokens[BIG_OWNER])],
        "create_thread": lambda: [Line("POST", "/api/threads", tokens[u], CREATE_BODY) for u in users],
        "append_message": lambda: [
            Line("POST", f"/api/threads/{t}/messages", tokens[u], APPEND_BODY) for u, t in data.threads
        ],
        "patch_metadata": lambda: [Line("PATCH", f"/api/threads/{t}", tokens[u], PATCH_BODY) for u, t in data.threads],
    }
    return builders[key]()


def write_endpoint_files(app: str, data: AppData, tokens: dict[str, str], workdir: Path) -> dict[str, Path]:
    return {e.key: write_lines(workdir / f"{app}-{e.key}.lines", lines_for(e.key, data, tokens)) for e in ENDPOINTS}


def write_soak_file(app: str, data: AppData, tokens: dict[str, str], workdir: Path, size: int = 20_000) -> Path:
    rng = random.Random(6)
    pools = {key: lines_for(key, data, tokens) for key in SOAK_WEIGHTS}
    keys = rng.choices(list(SOAK_WEIGHTS), weights=list(SOAK_WEIGHTS.values()), k=size)
    return write_lines(workdir / f"{app}-soak.lines", (rng.choice(pools[k]) for k in keys))


async def _get(client: httpx.AsyncClient, path: str, token: str, params: dict[str, str | int]) -> dict[str, object]:
    response = await client.get(path, params=params, headers={"Authorization": f"Bearer {token}"})
    response.raise_for_status()
    page: dict[str, object] = response.json()
    return page


async def deep_cursors(base_url: str, tokens: dict[str, str], users: list[str]) -> dict[str, str]:
    """Walks each user's thread list through the API to the cursor that opens page DEEP_PAGE."""
    limit = asyncio.Semaphore(8)

    async def walk(client: httpx.AsyncClient, user: str) -> str:
        async with limit:
            cursor: str | None = None
            for _ in range(DEEP_PAGE - 1):
                params: dict[str, str | int] = {"limit": PAGE_SIZE} | ({"cursor": cursor} if cursor else {})
                page = await _get(client, "/api/threads", tokens[user], params)
                cursor = page["next_cursor"]  # type: ignore[assignment]
                if not cursor:
                    raise RuntimeError(f"{user} has fewer than {DEEP_PAGE} pages of threads")
            return cursor  # type: ignore[return-value]

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        found = await asyncio.gather(*(walk(client, u) for u in users))
    return dict(zip(users, found, strict=True))


async def last_page_cursor(base_url: str, token: str, thread_id: str, messages: int, page: int = 50) -> str:
    """Walks the big thread's messages in ascending order to the cursor whose page is the last `page` messages."""
    target = messages - page  # the cursor must point at this seq
    path = f"/api/threads/{thread_id}/messages"
    cursor: str | None = None
    position = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        while position < target:
            step = min(100, target - position)
            params: dict[str, str | int] = {"limit": step} | ({"cursor": cursor} if cursor else {})
            data = await _get(client, path, token, params)
            cursor = data["next_cursor"]  # type: ignore[assignment]
            position += step
            if not cursor:
                raise RuntimeError(f"thread {thread_id} ended before seq {target}")
        assert cursor is not None
        last = await _get(client, path, token, {"cursor": cursor, "limit": page})
        items = last["data"]
        if last["has_more"] or not isinstance(items, list) or len(items) != page:
            raise RuntimeError("the walked cursor does not open the last page")
    return cursor
