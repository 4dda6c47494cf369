"""Shared by the branch tests (tests/messages/test_branches.py, tests/threads/test_branch_switch.py): requests
that build a thread's message tree, and a model of the tree, made from the messages' parent_id links as the
responses gave them, that says what every listing must answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.conftest import Api

TREE_FIELDS = ("parent_id", "depth", "sibling_index", "sibling_count")
# Version 2's streamed replies and feedback (API.md): always present.
REPLY_FIELDS = ("status", "finish_reason", "model", "usage", "feedback")
MESSAGE_FIELDS = {
    "id",
    "object",
    "thread_id",
    "seq",
    "role",
    "content",
    "metadata",
    "created_at",
    *TREE_FIELDS,
    *REPLY_FIELDS,
}

# A parent_id of `ABSENT` leaves the field out of the body: the message follows the current one.
ABSENT: Any = object()


def messages_url(thread_id: str) -> str:
    return f"/api/threads/{thread_id}/messages"


async def post_message(
    api: Api, user: str, thread_id: str, content: str, parent_id: Any = ABSENT, **body: Any
) -> httpx.Response:
    if parent_id is not ABSENT:
        body["parent_id"] = parent_id
    return await api.request("POST", messages_url(thread_id), user=user, json={"content": content, **body})


async def add(
    api: Api, user: str, thread_id: str, content: str, parent_id: Any = ABSENT, **body: Any
) -> dict[str, Any]:
    response = await post_message(api, user, thread_id, content, parent_id, **body)
    assert response.status_code == 201, response.text
    message: dict[str, Any] = response.json()
    assert set(message) == MESSAGE_FIELDS, message
    return message


async def thread_of(api: Api, user: str, thread_id: str) -> dict[str, Any]:
    response = await api.request("GET", f"/api/threads/{thread_id}", user=user)
    assert response.status_code == 200, response.text
    thread: dict[str, Any] = response.json()
    return thread


async def page(api: Api, user: str, thread_id: str, **params: Any) -> dict[str, Any]:
    response = await api.request("GET", messages_url(thread_id), user=user, params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"object", "data", "next_cursor", "has_more"} and body["object"] == "list", body
    assert body["has_more"] == (body["next_cursor"] is not None), body
    for message in body["data"]:
        assert set(message) == MESSAGE_FIELDS, message
    return body


async def walk(api: Api, user: str, thread_id: str, **params: Any) -> list[dict[str, Any]]:
    """Every message of a listing, page after page."""
    collected: list[dict[str, Any]] = []
    cursor: str | None = params.pop("cursor", None)
    for _ in range(500):
        body = await page(api, user, thread_id, **params, **({"cursor": cursor} if cursor else {}))
        collected += body["data"]
        if not body["has_more"]:
            limit = params.get("limit")
            if limit is not None:
                # Full pages until the last, which holds the rest (and is empty only for an empty listing).
                assert len(body["data"]) <= int(limit)
            return collected
        assert body["data"], "a page with has_more must hold messages"
        if "limit" in params:
            assert len(body["data"]) == int(params["limit"]), body
        cursor = body["next_cursor"]
    raise AssertionError("pagination does not end")


def ids(messages: list[dict[str, Any]]) -> list[str]:
    return [m["id"] for m in messages]


@dataclass
class Tree:
    """A thread's messages as created (by seq), with what the contract derives from their parent_id links."""

    messages: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, *created: dict[str, Any]) -> None:
        for message in created:
            self.messages[message["id"]] = message

    def by_seq(self) -> list[dict[str, Any]]:
        return sorted(self.messages.values(), key=lambda m: m["seq"])

    def children(self, parent_id: str | None) -> list[dict[str, Any]]:
        """In creation order: a child's sibling_index is its place here."""
        return [m for m in self.by_seq() if m["parent_id"] == parent_id]

    def path_to(self, message_id: str) -> list[str]:
        path: list[str] = []
        at: str | None = message_id
        while at is not None:
            path.append(at)
            at = self.messages[at]["parent_id"]
        return path[::-1]

    def newest_leaf_from(self, message_id: str) -> str:
        """The contract's descent: the child created last at each step."""
        at = message_id
        while kids := self.children(at):
            at = kids[-1]["id"]
        return at

    def leaves(self) -> list[str]:
        parents = {m["parent_id"] for m in self.messages.values()}
        return [m["id"] for m in self.by_seq() if m["id"] not in parents]

    def expected(self, message_id: str) -> dict[str, Any]:
        """The message as any read must show it now: as created, with the tree fields the links give."""
        message = self.messages[message_id]
        siblings = self.children(message["parent_id"])
        return message | {
            "depth": len(self.path_to(message_id)),
            "sibling_index": ids(siblings).index(message_id) + 1,
            "sibling_count": len(siblings),
        }

    def check(self, listed: list[dict[str, Any]]) -> None:
        """Every listed message is one of the tree's, as the model says it must look now."""
        for message in listed:
            assert message == self.expected(message["id"]), (message, self.expected(message["id"]))
