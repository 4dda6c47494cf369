"""A representative request for every endpoint of API.md, each with the set-up it needs (made outside any
fault scope) so the sweeps can run it again and again on fresh objects."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from tests.conftest import BACKENDS as ALL_BACKENDS
from tests.conftest import Api
from threadstore import maintenance

LONG = os.environ.get("THREADSTORE_SAFETY_LONG", "") not in ("", "0")
FIRST_MESSAGE = "Can you help me plan a three day trip to Lisbon in March with kids?"
# The long mode uses larger requests: more initial messages, bigger bodies, more rows to page over.
INITIAL_MESSAGES = 12 if LONG else 2

Context = dict[str, Any]


BACKENDS = tuple(ALL_BACKENDS)
DIRECT = ("sqlite", "postgresql")


@dataclass(frozen=True)
class Endpoint:
    name: str
    setup: Callable[[Api, str], Awaitable[Context]]
    call: Callable[[Api, str, Context], Awaitable[httpx.Response]]
    writes: bool
    # Where CI sweeps it, by sweep ("fault", "cancel"); None: every sweep on every backend. The long mode
    # (THREADSTORE_SAFETY_LONG) always sweeps every endpoint everywhere.
    ci: dict[str, tuple[str, ...]] | None = None

    def backends(self, sweep: str) -> tuple[str, ...]:
        if LONG or self.ci is None:
            return BACKENDS
        return self.ci.get(sweep, ())


def cases(sweep: str, endpoints: list[Endpoint]) -> list[Any]:
    """The (endpoint, backend) pairs `sweep` runs, as pytest parameters named `endpoint-backend`."""
    return [
        pytest.param(endpoint, kind, id=f"{endpoint.name}-{kind}")
        for endpoint in endpoints
        for kind in endpoint.backends(sweep)
    ]


async def _nothing(_api: Api, _user: str) -> Context:
    return {}


async def _thread(api: Api, user: str, key: str | None = None, **body: Any) -> Context:
    headers = {"Idempotency-Key": key} if key else {}
    response = await api.request("POST", "/api/threads", user=user, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return {"thread": response.json()}


async def _two_threads(api: Api, user: str) -> Context:
    await _thread(api, user, title="older", metadata={"topic": "x"})
    return await _thread(api, user, title="newer", metadata={"topic": "x"})


async def _thread_with_messages(api: Api, user: str, key: str | None = None) -> Context:
    messages = [{"content": FIRST_MESSAGE}] + [
        {"role": "assistant", "content": f"answer {i} " * (50 if LONG else 1)} for i in range(INITIAL_MESSAGES)
    ]
    return await _thread(api, user, key, title="with messages", messages=messages)


async def _keyed_thread_with_messages(api: Api, user: str) -> Context:
    """A thread created and appended to with Idempotency-Keys: its permanent delete erases their stored responses
    too, so the sweeps check that erasure happens whole with the delete or not at all."""
    ctx = await _thread_with_messages(api, user, key="sweep-keyed-create")
    url = _url(ctx, "/messages")
    keyed = {"Idempotency-Key": "sweep-keyed-append"}
    appended = await api.request("POST", url, user=user, json={"content": "more"}, headers=keyed)
    assert appended.status_code == 201, appended.text
    return ctx


async def _plain_thread(api: Api, user: str) -> Context:
    return await _thread(api, user, title="plain", metadata={"keep": "me"})


async def _branched_thread(api: Api, user: str) -> Context:
    """A thread with a tree: the chain m1 → m2 → m3 → m4 of its creation, and a keyed append that opened a
    branch under m2 (the current message). Its delete of m2 takes three messages and a branch row, moves the
    current message and erases the key's stored response; an append under m2 opens a third branch."""
    body = {"title": "branched", "messages": [{"content": FIRST_MESSAGE}] + [{"content": f"m{i}"} for i in (2, 3, 4)]}
    ctx = await _thread(api, user, **body)
    listed = await api.request("GET", _url(ctx, "/messages"), user=user)
    assert listed.status_code == 200, listed.text
    ctx["m"] = [m["id"] for m in listed.json()["data"]]
    keyed = {"Idempotency-Key": "sweep-branch"}
    body = {"content": "edited answer", "parent_id": ctx["m"][1]}
    branch = await api.request("POST", _url(ctx, "/messages"), user=user, json=body, headers=keyed)
    assert branch.status_code == 201, branch.text
    ctx["branch"] = branch.json()["id"]
    return ctx


# A streamed reply: "Hel" + "lo" stored as two delta rows after an empty start (the design's message_deltas).
REPLY_DELTAS = ("Hel", "lo")


async def _reply(api: Api, user: str) -> Context:
    """A thread whose last message is an in_progress reply grown by two deltas."""
    ctx = await _thread(api, user, title="streaming", messages=[{"content": FIRST_MESSAGE}])
    body = {"role": "assistant", "content": "", "status": "in_progress", "model": "m-1"}
    started = await api.request("POST", _url(ctx, "/messages"), user=user, json=body)
    assert started.status_code == 201, started.text
    ctx["reply"] = started.json()["id"]
    offset = 0
    for text in REPLY_DELTAS:
        sent = await api.request("POST", _reply_url(ctx, "/deltas"), user=user, json={"offset": offset, "text": text})
        assert sent.status_code == 200, sent.text
        offset += len(text)
    ctx["length"] = offset
    return ctx


async def _closed_reply_with_feedback(api: Api, user: str) -> Context:
    """A streamed reply ended by PATCH (its deltas folded into its content), then rated."""
    ctx = await _reply(api, user)
    closed = await api.request("PATCH", _reply_url(ctx), user=user, json={"status": "completed"})
    assert closed.status_code == 200, closed.text
    rated = await api.request("PUT", _reply_url(ctx, "/feedback"), user=user, json={"rating": "up"})
    assert rated.status_code == 200, rated.text
    return ctx


SWEEP_PATH = "/_test/end-stale"


async def _stale_reply(api: Api, user: str) -> Context:
    """The only unfinished reply of the database (replies an earlier replay left unfinished are ended first,
    outside any fault scope), which the sweep below ends."""
    _install_sweep_route(api.app)
    await maintenance.end_stale_replies(api.database, -60.0)
    return await _reply(api, user)


def _install_sweep_route(app: FastAPI) -> None:
    """The stale sweep is the server's own write, run by maintenance.end_stale_forever: this test-only route
    runs that same function (every unfinished reply counts as stale), so the sweeps drive it like a request
    and its failures are answered through the app's own error handlers."""
    if any(getattr(route, "path", None) == SWEEP_PATH for route in app.router.routes):
        return

    async def end_stale(request: Request) -> Response:
        ended = await maintenance.end_stale_replies(request.app.state.database, -60.0)
        return Response(f'{{"ended": {ended}}}', media_type="application/json")

    app.add_api_route(SWEEP_PATH, end_stale, methods=["POST"], include_in_schema=False)


def _reply_url(ctx: Context, suffix: str = "") -> str:
    return _url(ctx, f"/messages/{ctx['reply']}{suffix}")


def _url(ctx: Context, suffix: str = "") -> str:
    return f"/api/threads/{ctx['thread']['id']}{suffix}"


def _create_body() -> dict[str, Any]:
    messages = [{"content": FIRST_MESSAGE}] + [
        {"role": "assistant", "content": f"reply {i}", "metadata": {"i": i}} for i in range(INITIAL_MESSAGES)
    ]
    return {"title": "Lisbon", "metadata": {"topic": "travel"}, "messages": messages}


# The branch endpoints swept are the subset that proves the point within about a minute of CI: each keyed
# write's operations contain its unkeyed form's (fork without a key, append with a parent and no key), and two
# reads are left out: one message by id is one indexed row (as get_thread), view=all is version 1's seq page.
ENDPOINTS = [
    Endpoint(
        "list_threads",
        _two_threads,
        lambda api, user, ctx: api.request("GET", "/api/threads", user=user, params={"limit": 1, "q": "e"}),
        writes=False,
    ),
    Endpoint(
        # Search (issue 18): one statement over the index; a read, swept on the two databases.
        "search",
        _two_threads,
        lambda api, user, ctx: api.request("GET", "/api/search", user=user, params={"q": "newer", "limit": 1}),
        writes=False,
        ci={"fault": ("sqlite", "postgresql"), "cancel": ("sqlite", "postgresql")},
    ),
    Endpoint(
        "create_thread",
        _nothing,
        lambda api, user, ctx: api.request("POST", "/api/threads", user=user, json=_create_body()),
        writes=True,
    ),
    Endpoint(
        # Without messages: one statement, which PostgreSQL runs as its own transaction (no BEGIN/COMMIT).
        "create_thread_bare",
        _nothing,
        lambda api, user, ctx: api.request(
            "POST", "/api/threads", user=user, json={"title": "t", "metadata": {"a": 1}}
        ),
        writes=True,
    ),
    Endpoint(
        "create_thread_idempotent",
        _nothing,
        lambda api, user, ctx: api.request(
            "POST", "/api/threads", user=user, json=_create_body(), headers={"Idempotency-Key": "sweep-create"}
        ),
        writes=True,
    ),
    Endpoint("get_thread", _plain_thread, lambda api, user, ctx: api.request("GET", _url(ctx), user=user), False),
    Endpoint(
        "patch_thread",
        _plain_thread,
        lambda api, user, ctx: api.request(
            "PATCH",
            _url(ctx),
            user=user,
            json={"title": "patched", "metadata": {"keep": None, "new": "v"}},
            headers={"If-Match": '"1"'},
        ),
        writes=True,
    ),
    Endpoint(
        # A nested merge: on PostgreSQL a read, then a compare-and-set UPDATE (the flat PATCH above is one).
        "patch_thread_nested",
        _plain_thread,
        lambda api, user, ctx: api.request("PATCH", _url(ctx), user=user, json={"metadata": {"n": {"a": 1}}}),
        writes=True,
    ),
    Endpoint("archive_thread", _plain_thread, lambda api, user, ctx: api.request("DELETE", _url(ctx), user=user), True),
    Endpoint(
        "delete_thread_permanently",
        _keyed_thread_with_messages,
        lambda api, user, ctx: api.request("DELETE", _url(ctx), user=user, params={"permanent": "true"}),
        writes=True,
    ),
    Endpoint(
        "append_message",
        _plain_thread,
        lambda api, user, ctx: api.request(
            "POST", _url(ctx, "/messages"), user=user, json={"content": "appended", "metadata": {"m": 1}}
        ),
        writes=True,
    ),
    Endpoint(
        "append_message_idempotent",
        _plain_thread,
        lambda api, user, ctx: api.request(
            "POST",
            _url(ctx, "/messages"),
            user=user,
            json={"role": "assistant", "content": "appended once"},
            headers={"Idempotency-Key": "sweep-append"},
        ),
        writes=True,
    ),
    Endpoint(
        # A third branch under a message that has two children: a new branch row, one statement.
        "append_branch_idempotent",
        _branched_thread,
        lambda api, user, ctx: api.request(
            "POST",
            _url(ctx, "/messages"),
            user=user,
            json={"content": "regenerated", "parent_id": ctx["m"][1]},
            headers={"Idempotency-Key": "sweep-append-branch"},
        ),
        writes=True,
    ),
    Endpoint(
        "append_root",
        _branched_thread,
        lambda api, user, ctx: api.request(
            "POST", _url(ctx, "/messages"), user=user, json={"content": "edited question", "parent_id": None}
        ),
        writes=True,
    ),
    Endpoint(
        # The descent from m3 to the newest leaf below it (m4), then a compare-and-set of the thread.
        "switch_branch",
        _branched_thread,
        lambda api, user, ctx: api.request("PATCH", _url(ctx), user=user, json={"current_message_id": ctx["m"][2]}),
        writes=True,
    ),
    Endpoint(
        "delete_branch",
        _branched_thread,
        lambda api, user, ctx: api.request("DELETE", _url(ctx, f"/messages/{ctx['m'][1]}"), user=user),
        writes=True,
    ),
    Endpoint(
        "fork_idempotent",
        _branched_thread,
        lambda api, user, ctx: api.request(
            "POST", _url(ctx, "/fork"), user=user, json={"title": "copy"}, headers={"Idempotency-Key": "sweep-fork"}
        ),
        writes=True,
    ),
    Endpoint(
        "list_leaf",
        _branched_thread,
        lambda api, user, ctx: api.request(
            "GET", _url(ctx, "/messages"), user=user, params={"leaf": ctx["m"][3], "limit": 2, "order": "desc"}
        ),
        writes=False,
    ),
    Endpoint(
        "list_siblings",
        _branched_thread,
        lambda api, user, ctx: api.request(
            "GET", _url(ctx, "/messages"), user=user, params={"siblings_of": ctx["m"][2]}
        ),
        writes=False,
    ),
    Endpoint(
        "list_messages",
        _thread_with_messages,
        lambda api, user, ctx: api.request(
            "GET", _url(ctx, "/messages"), user=user, params={"limit": 2, "order": "desc"}
        ),
        writes=False,
    ),
    # Streamed replies (issue 17): a delta (one statement on PostgreSQL), its retry (a no-op answered as the
    # first time: the reads after a compare-and-set that matched nothing), the closing PATCH that folds the
    # deltas into the content, feedback set and removed, and the stale sweep. CI's share, within about 40 s:
    # every write in the fault sweep, the delta (the only one-statement write, which PgBouncer's transaction
    # mode changes) through PgBouncer too; in the cancellation sweep the delta, the closing PATCH and the
    # sweep. The rest share their units' code (`_locked` and `_change` of messages/replies.py) with these.
    Endpoint(
        "append_delta",
        _reply,
        lambda api, user, ctx: api.request(
            "POST", _reply_url(ctx, "/deltas"), user=user, json={"offset": ctx["length"], "text": ", wörld 🙂"}
        ),
        writes=True,
        ci={"fault": BACKENDS, "cancel": BACKENDS},
    ),
    Endpoint(
        "append_delta_retry",
        _reply,
        lambda api, user, ctx: api.request(
            "POST", _reply_url(ctx, "/deltas"), user=user, json={"offset": len(REPLY_DELTAS[0]), "text": "lo"}
        ),
        writes=False,
        ci={},
    ),
    Endpoint(
        "close_reply",
        _reply,
        lambda api, user, ctx: api.request(
            "PATCH",
            _reply_url(ctx),
            user=user,
            json={
                "status": "completed",
                "finish_reason": "stop",
                "usage": {"input_tokens": 12, "output_tokens": 2},
                "metadata": {"latency_ms": 840},
            },
        ),
        writes=True,
        ci={"fault": DIRECT, "cancel": DIRECT},
    ),
    Endpoint(
        # On the unfinished reply: its event carries the text so far, deltas included.
        "put_feedback",
        _reply,
        lambda api, user, ctx: api.request(
            "PUT", _reply_url(ctx, "/feedback"), user=user, json={"rating": "down", "comment": "too short"}
        ),
        writes=True,
        ci={"fault": DIRECT},
    ),
    Endpoint(
        "delete_feedback",
        _closed_reply_with_feedback,
        lambda api, user, ctx: api.request("DELETE", _reply_url(ctx, "/feedback"), user=user),
        writes=True,
        ci={},
    ),
    Endpoint(
        "end_stale_reply",
        _stale_reply,
        lambda api, user, ctx: api.request("POST", SWEEP_PATH, user=user),
        writes=True,
        ci={"fault": DIRECT, "cancel": DIRECT},
    ),
    Endpoint(
        "auto_rename",
        _thread_with_messages,
        lambda api, user, ctx: api.request("POST", _url(ctx, "/auto-rename"), user=user),
        writes=True,
    ),
]

WRITE_ENDPOINTS = [e for e in ENDPOINTS if e.writes]


def has_events_endpoint(api: Api) -> bool:
    return "/api/events" in api.app.openapi().get("paths", {})
