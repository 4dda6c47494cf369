"""Race families of streamed replies (API.md, "Streamed replies" and "Feedback"): writers that stream deltas
into one reply, resuming where a 409 says the reply ends, as a generator does; a closing PATCH among them;
feedback and PATCHes racing; answers lost on the way back and retried.

Every text a family sends is unique, so each answer can be traced to its request and the final content to the
acknowledged deltas.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from scripts.torture.client import new_user, storm
from scripts.torture.family import Family, Race, RaceResult

STEPS = 5  # deltas each writer tries to send


@dataclass
class Sent:
    """A delta request and its answer."""

    offset: int
    text: str
    response: httpx.Response

    @property
    def reason(self) -> str | None:
        if self.response.status_code != 409:
            return None
        reason: str | None = self.response.json().get("reason")
        return reason


async def _reply(race: Race, user: str, content: str = "") -> tuple[str, str]:
    """A new thread with a question and an in_progress reply (its text so far `content`): (thread id, reply id)."""
    created = await race.client.request("POST", "/api/threads", user, json={"messages": [{"content": "question"}]})
    assert created.status_code == 201, created.text
    thread_id = created.json()["id"]
    body = {"role": "assistant", "content": content, "status": "in_progress"}
    started = await race.client.request("POST", f"/api/threads/{thread_id}/messages", user, json=body)
    assert started.status_code == 201, started.text
    return thread_id, started.json()["id"]


async def _replies(race: Race, user: str, count: int, content: str = "") -> list[tuple[str, str]]:
    return list(await asyncio.gather(*(_reply(race, user, content) for _ in range(count))))


def _url(thread_id: str, message_id: str, suffix: str = "") -> str:
    return f"/api/threads/{thread_id}/messages/{message_id}{suffix}"


async def _message(race: Race, user: str, thread_id: str, message_id: str) -> dict[str, Any]:
    response = await race.client.request("GET", _url(thread_id, message_id), user)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def _stream(race: Race, user: str, thread_id: str, message_id: str, name: str, log: list[Sent]) -> None:
    """A generator's writer: sends STEPS unique deltas, each at the length it believes stored — the last
    acknowledged length, or the `length` of a 409 `offset` — and stops at any other answer."""
    offset = 0
    for step in range(STEPS):
        text = f"<{name}.{step}{'~' * random.randrange(4)}>"
        response = await race.client.request(
            "POST", _url(thread_id, message_id, "/deltas"), user, json={"offset": offset, "text": text}
        )
        sent = Sent(offset, text, response)
        log.append(sent)
        if response.status_code == 200 or sent.reason == "offset":
            offset = response.json()["length"]
        else:
            return


def _check_chain(result: RaceResult, message_id: str, log: list[Sent], start: str = "") -> str:
    """The acknowledged deltas of a reply, ordered by offset, follow each other from the length of `start`, each
    answered as the contract says; every 409 `offset` names a length the reply had (a chain boundary past the
    offset sent). Returns the text they make."""
    acked = sorted((s for s in log if s.response.status_code == 200), key=lambda s: s.offset)
    text, boundaries = start, {len(start)}
    for sent in acked:
        answer = sent.response.json()
        expected = {"object": "message.delta", "message_id": message_id, "offset": sent.offset}
        expected["length"] = sent.offset + len(sent.text)
        result.expect(answer == expected, f"delta answered {answer}, not {expected}")
        result.expect(sent.offset == len(text), f"an acknowledged delta at {sent.offset}, the text is {len(text)} long")
        text += sent.text
        boundaries.add(len(text))
    for sent in log:
        if sent.reason == "offset":
            length = sent.response.json().get("length")
            result.expect(length in boundaries, f"a 409 says length {length}, which the reply never had")
            result.expect(length != sent.offset, f"a 409 offset at the stored length {length}")
            won = [s for s in acked if s.offset == sent.offset]
            if won:
                end = won[0].offset + len(won[0].text)
                result.expect(length >= end, f"a 409 at {sent.offset} says {length}, before its winner's end {end}")
    return text


async def two_writers_on_one_reply(race: Race) -> RaceResult:
    """Two writers streaming into one reply at the same offsets (several replies at once): of the requests sent
    at one offset exactly one is acknowledged, every other is 409 `offset` with the true stored length, and the
    content is exactly the acknowledged deltas in order."""
    result = RaceResult("two writers on one reply", race.clients)
    user = new_user()
    replies = await _replies(race, user, max(1, race.clients // 4))
    logs: dict[str, list[Sent]] = {message_id: [] for _, message_id in replies}

    def writer(thread_id: str, message_id: str, name: str) -> Any:
        async def run() -> httpx.Response:
            await _stream(race, user, thread_id, message_id, name, logs[message_id])
            return logs[message_id][-1].response

        return run

    await storm([writer(t, m, f"{w}{uuid.uuid4().hex[:6]}") for t, m in replies for w in "AB"])
    for thread_id, message_id in replies:
        log = logs[message_id]
        result.see([s.response for s in log])
        result.only([s.response for s in log], {200, 409}, "delta")
        result.expect(all(s.reason in (None, "offset") for s in log), "a 409 that is not about the offset")
        for offset in {s.offset for s in log}:
            won = sum(1 for s in log if s.offset == offset and s.response.status_code == 200)
            result.expect(won == 1, f"{won} deltas acknowledged at offset {offset}")
        text = _check_chain(result, message_id, log)
        stored = await _message(race, user, thread_id, message_id)
        result.expect(stored["content"] == text, "the content is not the acknowledged deltas in order")
        result.expect(stored["status"] == "in_progress", f"status {stored['status']}")
    for violation in await race.db.reply_violations([t for t, _ in replies]):
        result.expect(False, violation)
    return result


async def close_racing_deltas(race: Race) -> RaceResult:
    """Writers streaming into a reply while a closing PATCH lands among them (after a random number of
    acknowledged deltas): the final content is exactly the deltas acknowledged, all of them before the close;
    deltas refused after it are 409 `state`, but an identical retry of an acknowledged one is 200 as before."""
    result = RaceResult("closing PATCH racing deltas", race.clients)
    user = new_user()
    per_reply = 4  # three writers and the closer
    replies = await _replies(race, user, max(1, race.clients // per_reply), "Start: ")
    logs: dict[str, list[Sent]] = {message_id: [] for _, message_id in replies}
    closes: dict[str, httpx.Response] = {}

    def writer(thread_id: str, message_id: str) -> Any:
        async def run() -> httpx.Response:
            await _stream(race, user, thread_id, message_id, uuid.uuid4().hex[:6], logs[message_id])
            return logs[message_id][-1].response

        return run

    def closer(thread_id: str, message_id: str) -> Any:
        async def run() -> httpx.Response:
            after = random.randrange(3 * STEPS)
            for _ in range(500):  # at most ~5 s: then the writers are done anyway
                acked = sum(1 for s in logs[message_id] if s.response.status_code == 200)
                if acked >= after or len(logs[message_id]) >= 3 * STEPS:
                    break
                await asyncio.sleep(0.01)
            body = {"status": "completed", "finish_reason": "stop"}
            closes[message_id] = await race.client.request("PATCH", _url(thread_id, message_id), user, json=body)
            return closes[message_id]

        return run

    calls = []
    for thread_id, message_id in replies:
        calls += [writer(thread_id, message_id) for _ in range(per_reply - 1)] + [closer(thread_id, message_id)]
    await storm(calls)
    for thread_id, message_id in replies:
        log, close = logs[message_id], closes[message_id]
        result.see([s.response for s in log] + [close])
        result.only([s.response for s in log], {200, 409}, "delta")
        result.only([close], {200}, "closing PATCH")
        result.expect(all(s.reason in (None, "offset", "state") for s in log), "a 409 that is neither offset nor state")
        text = _check_chain(result, message_id, log, "Start: ")
        stored = await _message(race, user, thread_id, message_id)
        result.expect(stored["status"] == "completed", f"status {stored['status']}")
        result.expect(stored["content"] == text, "the content is not exactly the deltas acknowledged")
        if close.status_code == 200:
            closed = close.json()
            result.expect(closed["content"] == stored["content"], "the closing PATCH answered another content")
        # After the close: every acknowledged delta, sent again, is answered as the first time; any other is 409.
        acked = [s for s in log if s.response.status_code == 200]
        again = await asyncio.gather(
            *(
                race.client.request(
                    "POST", _url(thread_id, message_id, "/deltas"), user, json={"offset": s.offset, "text": s.text}
                )
                for s in acked
            )
        )
        result.see(list(again))
        for sent, answer in zip(acked, again, strict=True):
            same = answer.status_code == 200 and answer.json() == sent.response.json()
            result.expect(same, f"a retry of an acknowledged delta after the close answered {answer.status_code}")
        late = await race.client.request(
            "POST", _url(thread_id, message_id, "/deltas"), user, json={"offset": len(text), "text": "late"}
        )
        result.see([late])
        late_state = late.status_code == 409 and late.json().get("reason") == "state"
        result.expect(late_state, f"a new delta after the close answered {late.status_code}")
        # What a watcher replays: the delta events, in order, rebuild the content exactly.
        events = await race.db.events_of_message(message_id, "message.delta")
        replayed = "Start: "
        for event in events:
            result.expect(event["offset"] == len(replayed), "a message.delta event out of order")
            replayed += event["text"]
        result.expect(replayed == stored["content"], "the message.delta events do not rebuild the content")
        stored_deltas = await race.db.scalar("SELECT count(*) FROM message_deltas WHERE message_id = :m", m=message_id)
        result.expect(stored_deltas == 0, f"{stored_deltas} delta rows left after the close")
    for violation in await race.db.reply_violations([t for t, _ in replies]):
        result.expect(False, violation)
    return result


def _state(message: dict[str, Any]) -> tuple[Any, ...]:
    """What feedback and PATCHes change of a message."""
    feedback = message["feedback"]
    rated = None if feedback is None else (feedback["rating"], feedback["comment"])
    return message["status"], rated, tuple(sorted(message["metadata"].items()))


async def feedback_racing_patches(race: Race) -> RaceResult:
    """Feedback PUTs and DELETEs racing each other, metadata PATCHes and one closing PATCH on one reply: the
    message went through one serial order of them. Each change recorded `message.updated` under the message's
    row lock, so the events list that order: each event's state is the one before it with exactly one
    acknowledged request applied, each request that changed something has its event (and answered its state),
    a DELETE that changed nothing found no feedback at some point of the order, and the final state is the
    last one."""
    result = RaceResult("feedback racing patches", race.clients)
    user = new_user()
    thread_id, message_id = await _reply(race, user, "Hello")
    url = _url(thread_id, message_id)
    before = await _message(race, user, thread_id, message_id)
    requests: list[tuple[str, Any]] = []
    for i in range(race.clients - 1):
        kind = ("put", "delete", "patch")[i % 3]
        if kind == "put":
            requests.append(("put", (random.choice(["up", "down"]), f"comment {i}")))
        elif kind == "delete":
            requests.append(("delete", None))
        else:
            requests.append(("patch", (f"k{i}", i)))
    requests.insert(random.randrange(len(requests) + 1), ("close", None))

    def send(kind: str, value: Any) -> Any:
        if kind == "put":
            return lambda: race.client.request(
                "PUT", f"{url}/feedback", user, json={"rating": value[0], "comment": value[1]}
            )
        if kind == "delete":
            return lambda: race.client.request("DELETE", f"{url}/feedback", user)
        if kind == "patch":
            return lambda: race.client.request("PATCH", url, user, json={"metadata": {value[0]: value[1]}})
        return lambda: race.client.request("PATCH", url, user, json={"status": "completed"})

    responses = await storm([send(kind, value) for kind, value in requests])
    result.see(responses)
    for (kind, _), response in zip(requests, responses, strict=True):
        result.only([response], {204} if kind == "delete" else {200}, kind)

    def applied(state: tuple[Any, ...], kind: str, value: Any) -> tuple[Any, ...]:
        status, rated, metadata = state
        if kind == "put":
            return status, tuple(value), metadata
        if kind == "delete":
            return status, None, metadata
        if kind == "patch":
            return status, rated, tuple(sorted({**dict(metadata), value[0]: value[1]}.items()))
        return "completed", rated, metadata

    states = [_state(before)]
    unused = set(range(len(requests)))
    for event in await race.db.events_of_message(message_id, "message.updated"):
        state = _state(event)
        matches = [n for n in unused if applied(states[-1], *requests[n]) == state and states[-1] != state]
        result.expect(bool(matches), f"event {event['id']} is no acknowledged request applied to the state before")
        if matches:
            # A DELETE is the only kind several requests share: any of them may take the place.
            unused.discard(matches[0])
            response = responses[matches[0]]
            if response.status_code == 200:
                result.expect(_state(response.json()) == state, f"request {matches[0]} answered another state")
        states.append(state)
    for n in unused:
        kind, _ = requests[n]
        no_feedback_at_some_point = any(rated is None for _, rated, _ in states)
        result.expect(kind == "delete" and no_feedback_at_some_point, f"the {kind} request {n} has no event")
    after = await _message(race, user, thread_id, message_id)
    result.expect(_state(after) == states[-1], "the final state is not the last of the serial order")
    result.expect(after["content"] == "Hello", "the content changed")
    for violation in await race.db.reply_violations([thread_id]):
        result.expect(False, violation)
    return result


async def _send_and_drop(base_url: str, path: str, body: bytes, authorization: str, delay: float) -> None:
    """Sends a request and goes away without reading its answer (a connection cut while the answer travels)."""
    url = httpx.URL(base_url)
    _reader, writer = await asyncio.open_connection(url.host, url.port)
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {url.host}\r\nAuthorization: {authorization}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    await asyncio.sleep(delay)
    writer.transport.abort()


async def lost_delta_answers_retried(race: Race) -> RaceResult:
    """Generators whose delta answers are lost (the connection cut after sending, at 0-20 ms, so the delta may or
    may not have committed, and may still be running) and who retry the same delta: the retry is 200 with the
    answer of a first time, and each delta is in the content once, in order."""
    result = RaceResult("lost delta answers retried", race.clients)
    user = new_user()
    replies = await _replies(race, user, max(1, race.clients // 2))
    authorization = race.client.headers(user)["Authorization"]
    base_url = str(race.client.http.base_url)
    texts: dict[str, list[str]] = {}

    def generator(thread_id: str, message_id: str) -> Any:
        async def run() -> httpx.Response:
            path = _url(thread_id, message_id, "/deltas")
            offset, last = 0, None
            texts[message_id] = []
            for step in range(STEPS):
                text = f"<{uuid.uuid4().hex[:8]}.{step}>"
                body = {"offset": offset, "text": text}
                if random.random() < 0.7:
                    raw = f'{{"offset": {offset}, "text": "{text}"}}'.encode()
                    await _send_and_drop(base_url, path, raw, authorization, random.uniform(0, 0.02))
                last = await race.client.request("POST", path, user, json=body)
                result.see([last])
                result.only([last], {200}, "retried delta")
                expected = {"object": "message.delta", "message_id": message_id, "offset": offset}
                expected["length"] = offset + len(text)
                result.expect(last.status_code != 200 or last.json() == expected, f"retry answered {last.text}")
                texts[message_id].append(text)
                offset += len(text)
            assert last is not None
            return last

        return run

    await storm([generator(t, m) for t, m in replies])
    await asyncio.sleep(0.2)  # a dropped request may still be running: it must change nothing when it ends
    for thread_id, message_id in replies:
        stored = await _message(race, user, thread_id, message_id)
        result.expect(stored["content"] == "".join(texts[message_id]), "a delta is missing, repeated or misplaced")
    for violation in await race.db.reply_violations([t for t, _ in replies]):
        result.expect(False, violation)
    return result


FAMILIES: dict[str, Family] = {
    "two-writers-one-reply": two_writers_on_one_reply,
    "close-vs-deltas": close_racing_deltas,
    "feedback-vs-patches": feedback_racing_patches,
    "lost-delta-answers": lost_delta_answers_retried,
}
