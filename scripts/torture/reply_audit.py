"""The crash audit's share for streamed replies: what the load's generators were told (scripts/torture/crash.py,
`Load._stream`), and the check that every acknowledged delta is in its reply, in order, after the kills, and
that a reply whose close was acknowledged never changed after.

A reply starts with a unique text (`TAG` + hex), which also names it in the other audits: its stored content is
that text and its deltas (`trace` maps the content to it).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from scripts.torture.client import Client

TAG = "s-"
_KEY_LENGTH = len(TAG) + 32  # TAG and a uuid's hex


def trace(content: str) -> str:
    """What a stored content is traced by: a reply's starting text, anything else itself."""
    return content[:_KEY_LENGTH] if content.startswith(TAG) else content


@dataclass
class Reply:
    """One generator's reply: what it sent and what it was told."""

    thread_id: str
    user: str
    start: str
    acked: list[tuple[int, str]] = field(default_factory=list)  # acknowledged deltas, in order
    pending: str | None = None  # a delta given up on, its outcome unknown (the generator stopped there)
    closing: dict[str, Any] | None = None  # the closing PATCH sent, whatever its outcome
    closed: dict[str, Any] | None = None  # the message as the acknowledged closing PATCH answered it
    swept: bool = False  # a 409 `state` said the reply had ended without its close: the stale sweep

    @property
    def text(self) -> str:
        return self.start + "".join(piece for _, piece in self.acked)


async def audit_replies(
    client: Client,
    replies: dict[str, Reply],
    may_be_deleted: Callable[[str], bool],
    expect: Callable[[bool, str], None],
) -> Counter[str]:
    """Every acknowledged reply, read back through the API: its content is its start and every acknowledged
    delta in order (and, at most, the one delta whose answer never came); a reply whose close was acknowledged
    is exactly as the close answered; one ended otherwise was ended by the stale sweep, keeping its text.
    Returns what was found: replies started, deltas acknowledged, and how the replies ended."""
    gate = asyncio.Semaphore(16)
    found: Counter[str] = Counter(started=len(replies), deltas=sum(len(r.acked) for r in replies.values()))

    async def one(message_id: str, reply: Reply) -> None:
        async with gate:
            response = await client.request("GET", f"/api/threads/{reply.thread_id}/messages/{message_id}", reply.user)
        if response.status_code == 404 and may_be_deleted(message_id):
            found["deleted"] += 1
            return
        expect(response.status_code == 200, f"reply {message_id} is {response.status_code}")
        if response.status_code != 200:
            return
        message = response.json()
        content = message["content"]
        texts = [reply.text] + ([reply.text + reply.pending] if reply.pending is not None else [])
        expect(content in texts, f"reply {message_id} lacks an acknowledged delta, or holds one twice or out of order")
        ended_by_sweep = (message["status"], message["finish_reason"]) == ("incomplete", "timeout")
        found["swept" if ended_by_sweep else "unfinished" if message["status"] == "in_progress" else "closed"] += 1
        if reply.closed is not None:
            # Nothing may change a closed reply: no delta, no sweep. (sibling_count grows with later siblings.)
            same = {**message, "sibling_count": 0} == {**reply.closed, "sibling_count": 0}
            expect(same, f"reply {message_id} changed after its close was acknowledged")
        elif reply.swept:
            expect(ended_by_sweep, f"reply {message_id} refused a delta as ended, yet is {message['status']}")
        else:
            closed_so = reply.closing is not None and message["status"] == reply.closing["status"]
            ok = message["status"] == "in_progress" or ended_by_sweep or closed_so
            expect(ok, f"reply {message_id} is {message['status']}, which no request or sweep made it")

    await asyncio.gather(*(one(message_id, reply) for message_id, reply in replies.items()))
    return found
