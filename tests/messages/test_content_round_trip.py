"""A 10-turn tool-using conversation, written as OpenAI Chat Completions messages and as Vercel AI SDK 5
`UIMessage`s, stored through the API with the mapping docs/api.md documents ("Structured content (version 2)")
and read back unchanged.

The mapping functions here are that documentation as code: a client of either SDK can copy them.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from tests.conftest import Api
from threadstore.messages.parts import validate, wire
from threadstore.messages.schemas import MessageCreate

Message = dict[str, Any]

# Valid requests are refused at storage until the parts column exists; the lead removes the mark on merging.


# --- OpenAI Chat Completions <-> threadstore ---------------------------------------------------------------------


def openai_to_threadstore(message: Message) -> Message:
    """One Chat Completions message as one threadstore message (docs/api.md has the table)."""
    role, content = message["role"], message["content"]
    if role == "tool":
        return {"role": "tool", "content": [_result(message["tool_call_id"], content)]}
    if role == "assistant" and message.get("tool_calls"):
        # The text (null when the model only called tools) comes first, then the calls, in order.
        text = [] if content is None else [{"type": "text", "text": content}]
        calls = [
            {"type": "tool_call", "id": c["id"], "name": c["function"]["name"], "arguments": c["function"]["arguments"]}
            for c in message["tool_calls"]
        ]
        return {"role": "assistant", "content": text + calls}
    if isinstance(content, str):
        return {"role": role, "content": content}
    return {"role": role, "content": [_openai_content_part(part) for part in content]}


def _result(tool_call_id: str, content: str) -> Message:
    return {"type": "tool_result", "tool_call_id": tool_call_id, "content": content}


def _openai_content_part(part: Message) -> Message:
    if part["type"] == "text":
        return {"type": "text", "text": part["text"]}
    if part["type"] == "image_url":
        return {"type": "image", "url": part["image_url"]["url"]}
    if part["type"] == "file":
        return {"type": "file", "url": part["file"]["file_data"], "name": part["file"].get("filename")}
    raise ValueError(f"not carried: {part['type']}")


def threadstore_to_openai(message: Message) -> list[Message]:
    """A stored message as Chat Completions messages: one, except a tool message of several results (one
    each). Reasoning parts are not carried; nor is `is_error` (Chat Completions has no such flag)."""
    role, content = message["role"], message["content"]
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if role == "tool":
        return [{"role": "tool", "tool_call_id": p["tool_call_id"], "content": p["content"]} for p in content]
    calls = [p for p in content if p["type"] == "tool_call"]
    if role == "assistant" and calls:
        texts = [p["text"] for p in content if p["type"] == "text"]
        return [
            {
                "role": "assistant",
                "content": "".join(texts) if texts else None,
                "tool_calls": [
                    {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
                    for c in calls
                ],
            }
        ]
    return [{"role": role, "content": [_openai_part(p) for p in content if p["type"] != "reasoning"]}]


def _openai_part(part: Message) -> Message:
    if part["type"] == "text":
        return {"type": "text", "text": part["text"]}
    if part["type"] == "image":
        return {"type": "image_url", "image_url": {"url": part["url"]}}
    if part["type"] == "file":
        file = {"file_data": part["url"]} | ({} if part["name"] is None else {"filename": part["name"]})
        return {"type": "file", "file": file}
    raise ValueError(f"not carried: {part['type']}")


def _weather(city: str) -> str:
    return json.dumps({"city": city})


OPENAI_CONVERSATION: list[Message] = [
    {"role": "system", "content": "You are a travel assistant. Use the tools; never invent prices."},
    # 1: two calls in parallel, two results
    {"role": "user", "content": "What's the weather in Lisbon and Porto this weekend?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_w1", "type": "function", "function": {"name": "get_weather", "arguments": _weather("Lisbon")}},
            {"id": "call_w2", "type": "function", "function": {"name": "get_weather", "arguments": _weather("Porto")}},
        ],
    },
    {"role": "tool", "tool_call_id": "call_w1", "content": '{"celsius": 24, "sky": "sunny"}'},
    {"role": "tool", "tool_call_id": "call_w2", "content": '{"celsius": 19, "sky": "showers"}'},
    {"role": "assistant", "content": "Lisbon: 24 °C and sunny. Porto: 19 °C with showers."},
    # 2: text and a call in one message; the tool fails; the model retries
    {"role": "user", "content": "Find me a flight from Berlin to Lisbon on Friday."},
    {
        "role": "assistant",
        "content": "Let me search the flights.",
        "tool_calls": [
            {
                "id": "call_f1",
                "type": "function",
                "function": {
                    "name": "search_flights",
                    "arguments": '{"from": "BER", "to": "LIS", "date": "2026-12-04"}',
                },
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_f1", "content": '{"error": "upstream timeout"}'},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_f2",
                "type": "function",
                "function": {"name": "search_flights", "arguments": '{"from":"BER","to":"LIS","date":"2026-12-04"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_f2", "content": '[{"flight": "TP 565", "departs": "09:40"}]'},
    {"role": "assistant", "content": "TP 565 leaves Berlin at 09:40 on Friday."},
    # 3: an image from the user
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Is this hotel close to the center?"},
            {"type": "image_url", "image_url": {"url": "https://images.example.com/hotel-lisboa.jpg"}},
        ],
    },
    {"role": "assistant", "content": "Yes: that is Rossio square behind it, the heart of the old town."},
    # 4
    {"role": "user", "content": "Convert 450 EUR to USD."},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_c1",
                "type": "function",
                "function": {"name": "convert_currency", "arguments": '{"amount": 450, "from": "EUR", "to": "USD"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_c1", "content": '{"amount": 488.7}'},
    {"role": "assistant", "content": "450 EUR is about 488.70 USD."},
    # 5: a file from the user
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Book TP 565; my passport details are in this file."},
            {
                "type": "file",
                "file": {"file_data": "data:application/pdf;base64,JVBERi0xLjQK", "filename": "passport.pdf"},
            },
        ],
    },
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_b1",
                "type": "function",
                "function": {"name": "book_flight", "arguments": '{"flight": "TP 565"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_b1", "content": '{"confirmation": "ABC123"}'},
    {"role": "assistant", "content": "Booked: confirmation ABC123."},
    # 6
    {"role": "user", "content": "Put it in my calendar."},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_e1",
                "type": "function",
                "function": {"name": "create_event", "arguments": '{"title": "TP 565 to Lisbon", "start": "09:40"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_e1", "content": "created"},
    {"role": "assistant", "content": "Done: it is in your calendar on Friday at 09:40."},
    # 7: no tool
    {"role": "user", "content": "What should I pack?"},
    {"role": "assistant", "content": "Light clothes, a rain jacket for Porto, and comfortable shoes for the hills."},
    # 8
    {"role": "user", "content": "Any good restaurants near the hotel?"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_p1",
                "type": "function",
                "function": {"name": "search_places", "arguments": '{"near": "Rossio", "kind": "restaurant"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_p1", "content": '["Cervejaria Ramiro", "Taberna da Rua das Flores"]'},
    {"role": "assistant", "content": "Cervejaria Ramiro (seafood) and Taberna da Rua das Flores (petiscos)."},
    # 9: the tool reports an error
    {"role": "user", "content": "Reserve Ramiro for two at 20:00 on Friday."},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_r1",
                "type": "function",
                "function": {"name": "reserve_table", "arguments": '{"place": "Cervejaria Ramiro", "people": 2}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_r1", "content": "Error: fully booked on 2026-12-04"},
    {"role": "assistant", "content": "Ramiro is fully booked on Friday. Shall I try Taberna da Rua das Flores?"},
    # 10
    {"role": "user", "content": "Yes, please."},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_r2",
                "type": "function",
                "function": {
                    "name": "reserve_table",
                    "arguments": '{"place": "Taberna da Rua das Flores", "people": 2}',
                },
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_r2", "content": '{"reserved": "20:00"}'},
    {"role": "assistant", "content": "Reserved: Taberna da Rua das Flores, Friday at 20:00, for two."},
]


# --- Vercel AI SDK 5 UIMessage <-> threadstore ------------------------------------------------------------------

# UI parts that have no threadstore type, kept in the message's metadata with their index.
_KEPT_IN_METADATA = re.compile(r"^(step-start|source-url|source-document|data-.+)$")


def ui_to_threadstore(message: Message) -> Message:
    """One UIMessage as one threadstore message (docs/api.md has the table)."""
    parts: list[Message] = []
    kept: list[list[Any]] = []
    for index, part in enumerate(message["parts"]):
        kind = part["type"]
        if kind in ("text", "reasoning"):
            parts.append({"type": kind, "text": part["text"]})  # `state`: a stored message is finished
        elif kind == "file":
            parts.append(
                {"type": "file", "url": part["url"], "name": part.get("filename"), "mime_type": part["mediaType"]}
            )
        elif kind.startswith("tool-"):
            parts.extend(_ui_tool(kind.removeprefix("tool-"), part))
        elif _KEPT_IN_METADATA.match(kind):
            kept.append([index, part])
        else:
            raise ValueError(f"not carried: {kind}")
    metadata: Message = {"ui_id": message["id"]}
    if "metadata" in message:
        metadata["ui_metadata"] = message["metadata"]
    if kept:
        metadata["ui_parts"] = kept
    # A message that is one text part is stored as a string: readable by any client, version 1 included.
    content: Any = parts[0]["text"] if [p["type"] for p in parts] == ["text"] else parts
    return {"role": message["role"], "content": content, "metadata": metadata}


def _ui_tool(name: str, part: Message) -> list[Message]:
    call = {"type": "tool_call", "id": part["toolCallId"], "name": name, "arguments": json.dumps(part["input"])}
    if part["state"] == "output-available":
        return [call, _result(part["toolCallId"], json.dumps(part["output"]))]
    if part["state"] == "output-error":
        return [call, _result(part["toolCallId"], part["errorText"]) | {"is_error": True}]
    if part["state"] == "input-available":
        return [call]
    raise ValueError(f"not carried: a tool part in state {part['state']}")


def threadstore_to_ui(message: Message) -> Message:
    content, metadata = message["content"], message["metadata"]
    stored = [{"type": "text", "text": content}] if isinstance(content, str) else content
    finished = {"state": "done"} if message["role"] == "assistant" else {}
    results = {p["tool_call_id"]: p for p in stored if p["type"] == "tool_result"}
    parts: list[Message] = []
    for part in stored:
        if part["type"] in ("text", "reasoning"):
            parts.append({"type": part["type"], "text": part["text"], **finished})
        elif part["type"] == "file":
            filename = {} if part["name"] is None else {"filename": part["name"]}
            parts.append(
                {
                    "type": "file",
                    "mediaType": part["mime_type"] or _media_type(part["url"]),
                    **filename,
                    "url": part["url"],
                }
            )
        elif part["type"] == "image":
            parts.append({"type": "file", "mediaType": _media_type(part["url"], "image/*"), "url": part["url"]})
        elif part["type"] == "tool_call":
            parts.append(_ui_tool_part(part, results.get(part["id"])))
    for index, kept in metadata.get("ui_parts", []):
        parts.insert(index, kept)
    ui: Message = {"id": metadata["ui_id"], "role": message["role"]}
    if "ui_metadata" in metadata:
        ui["metadata"] = metadata["ui_metadata"]
    return ui | {"parts": parts}


def _ui_tool_part(call: Message, result: Message | None) -> Message:
    part = {"type": f"tool-{call['name']}", "toolCallId": call["id"]}
    arguments = json.loads(call["arguments"])
    if result is None:
        return part | {"state": "input-available", "input": arguments}
    if result["is_error"]:
        return part | {"state": "output-error", "input": arguments, "errorText": result["content"]}
    return part | {"state": "output-available", "input": arguments, "output": json.loads(result["content"])}


def _media_type(url: str, otherwise: str = "application/octet-stream") -> str:
    found = re.match(r"data:([^;,]+)", url)
    return found.group(1) if found else otherwise


def _tool(name: str, call_id: str, arguments: Any, output: Any = None, error: str | None = None) -> Message:
    part = {"type": f"tool-{name}", "toolCallId": call_id}
    if error is not None:
        return part | {"state": "output-error", "input": arguments, "errorText": error}
    return part | {"state": "output-available", "input": arguments, "output": output}


def _text(text: str) -> Message:
    return {"type": "text", "text": text}


def _done(kind: str, text: str) -> Message:
    return {"type": kind, "text": text, "state": "done"}


STEP = {"type": "step-start"}

UI_CONVERSATION: list[Message] = [
    {
        "id": "sys",
        "role": "system",
        "parts": [_text("You are a travel assistant. Use the tools; never invent prices.")],
    },
    # 1: reasoning, two calls in one step, then the answer
    {"id": "u1", "role": "user", "parts": [_text("What's the weather in Lisbon and Porto this weekend?")]},
    {
        "id": "a1",
        "role": "assistant",
        "metadata": {"model": "gpt-5", "totalTokens": 812},
        "parts": [
            STEP,
            _done("reasoning", "Two cities: call the weather tool for both at once."),
            _tool("getWeather", "call_w1", {"city": "Lisbon"}, {"celsius": 24, "sky": "sunny"}),
            _tool("getWeather", "call_w2", {"city": "Porto"}, {"celsius": 19, "sky": "showers"}),
            STEP,
            _done("text", "Lisbon: 24 °C and sunny. Porto: 19 °C with showers."),
        ],
    },
    # 2: text before a call; the tool fails; a retry in the next step
    {"id": "u2", "role": "user", "parts": [_text("Find me a flight from Berlin to Lisbon on Friday.")]},
    {
        "id": "a2",
        "role": "assistant",
        "parts": [
            STEP,
            _done("text", "Let me search the flights."),
            _tool("searchFlights", "call_f1", {"from": "BER", "to": "LIS"}, error="Upstream timeout after 10 s"),
            STEP,
            _tool("searchFlights", "call_f2", {"from": "BER", "to": "LIS"}, [{"flight": "TP 565", "departs": "09:40"}]),
            STEP,
            _done("text", "TP 565 leaves Berlin at 09:40 on Friday."),
        ],
    },
    # 3: an image from the user
    {
        "id": "u3",
        "role": "user",
        "parts": [
            _text("Is this hotel close to the center?"),
            {"type": "file", "mediaType": "image/jpeg", "url": "https://images.example.com/hotel-lisboa.jpg"},
        ],
    },
    {"id": "a3", "role": "assistant", "parts": [STEP, _done("text", "Yes: that is Rossio square behind it.")]},
    # 4
    {"id": "u4", "role": "user", "parts": [_text("Convert 450 EUR to USD.")]},
    {
        "id": "a4",
        "role": "assistant",
        "parts": [
            STEP,
            _tool("convertCurrency", "call_c1", {"amount": 450, "from": "EUR", "to": "USD"}, {"amount": 488.7}),
            STEP,
            _done("text", "450 EUR is about 488.70 USD."),
        ],
    },
    # 5: a file from the user, with its name
    {
        "id": "u5",
        "role": "user",
        "parts": [
            _text("Book TP 565; my passport details are in this file."),
            {
                "type": "file",
                "mediaType": "application/pdf",
                "filename": "passport.pdf",
                "url": "data:application/pdf;base64,JVBERi0xLjQK",
            },
        ],
    },
    {
        "id": "a5",
        "role": "assistant",
        "parts": [
            STEP,
            _tool("bookFlight", "call_b1", {"flight": "TP 565"}, {"confirmation": "ABC123"}),
            STEP,
            _done("text", "Booked: confirmation ABC123."),
        ],
    },
    # 6: a tool whose output is a plain string
    {"id": "u6", "role": "user", "parts": [_text("Put it in my calendar.")]},
    {
        "id": "a6",
        "role": "assistant",
        "parts": [
            STEP,
            _tool("createEvent", "call_e1", {"title": "TP 565 to Lisbon", "start": "09:40"}, "created"),
            STEP,
            _done("text", "Done: it is in your calendar on Friday at 09:40."),
        ],
    },
    # 7: no tool
    {"id": "u7", "role": "user", "parts": [_text("What should I pack?")]},
    {"id": "a7", "role": "assistant", "parts": [STEP, _done("text", "Light clothes and a rain jacket for Porto.")]},
    # 8: a web search, with a source
    {"id": "u8", "role": "user", "parts": [_text("Any good restaurants near the hotel?")]},
    {
        "id": "a8",
        "role": "assistant",
        "parts": [
            STEP,
            _tool("searchPlaces", "call_p1", {"near": "Rossio"}, ["Cervejaria Ramiro", "Taberna da Rua das Flores"]),
            STEP,
            _done("text", "Cervejaria Ramiro (seafood) and Taberna da Rua das Flores (petiscos)."),
            {
                "type": "source-url",
                "sourceId": "src_1",
                "url": "https://www.example.com/lisbon-food",
                "title": "Eat in Lisbon",
            },
        ],
    },
    # 9: the tool reports an error
    {"id": "u9", "role": "user", "parts": [_text("Reserve Ramiro for two at 20:00 on Friday.")]},
    {
        "id": "a9",
        "role": "assistant",
        "parts": [
            STEP,
            _tool("reserveTable", "call_r1", {"place": "Cervejaria Ramiro", "people": 2}, error="Fully booked"),
            STEP,
            _done("text", "Ramiro is fully booked on Friday. Shall I try Taberna da Rua das Flores?"),
        ],
    },
    # 10: a call still waiting for its result (the page closed before the tool ran)
    {"id": "u10", "role": "user", "parts": [_text("Yes, please.")]},
    {
        "id": "a10",
        "role": "assistant",
        "parts": [
            STEP,
            _done("reasoning", "Same tool, the other place."),
            {
                "type": "tool-reserveTable",
                "toolCallId": "call_r2",
                "state": "input-available",
                "input": {"place": "Taberna da Rua das Flores", "people": 2},
            },
        ],
    },
]


# --- the tests ----------------------------------------------------------------------------------------------------


def test_the_conversations_have_10_user_turns_tool_calls_in_parallel_and_a_tool_error() -> None:
    for conversation in (OPENAI_CONVERSATION, UI_CONVERSATION):
        assert sum(m["role"] == "user" for m in conversation) == 10
    assert any(len(m.get("tool_calls") or []) > 1 for m in OPENAI_CONVERSATION)
    assert any(m.get("content") and m.get("tool_calls") for m in OPENAI_CONVERSATION)
    assert any(p.get("state") == "output-error" for m in UI_CONVERSATION for p in m["parts"])


def openai_stored(conversation: list[Message]) -> list[Message]:
    return [openai_to_threadstore(copy.deepcopy(m)) for m in conversation]


def ui_stored(conversation: list[Message]) -> list[Message]:
    return [ui_to_threadstore(copy.deepcopy(m)) for m in conversation]


def as_returned(message: Message) -> Message:
    """The request as the API returns it: parts in their wire form, metadata defaulting to {}."""
    content = message["content"]
    return {
        "role": message["role"],
        "content": content if isinstance(content, str) else wire(validate(content)),
        "metadata": message.get("metadata", {}),
    }


@pytest.mark.parametrize(
    ("stored", "back", "conversation"),
    [
        (openai_stored, lambda ms: [o for m in ms for o in threadstore_to_openai(m)], OPENAI_CONVERSATION),
        (ui_stored, lambda ms: [threadstore_to_ui(m) for m in ms], UI_CONVERSATION),
    ],
    ids=["openai", "ui-message"],
)
def test_each_mapping_gives_back_exactly_its_input_and_writes_only_valid_requests(
    stored: Any, back: Any, conversation: list[Message]
) -> None:
    requests = stored(conversation)
    for request in requests:
        MessageCreate.model_validate(request)  # the API's own request model: no 422 on the way in
    assert back([as_returned(r) for r in requests]) == conversation


async def store_and_read_back(api: Api, user: str, requests: list[Message]) -> list[Message]:
    thread = await api.create_thread(user)
    url = f"/api/threads/{thread['id']}/messages"
    for request in requests:
        response = await api.request("POST", url, user=user, json=request)
        assert response.status_code == 201, response.text
    response = await api.request("GET", url, user=user, params={"limit": 100})
    assert response.status_code == 200, response.text
    assert response.json()["has_more"] is False
    data: list[Message] = response.json()["data"]
    return data


async def test_an_openai_conversation_is_stored_and_read_back_unchanged(api: Api, user: str) -> None:
    requests = openai_stored(OPENAI_CONVERSATION)
    read = await store_and_read_back(api, user, requests)
    assert [{k: m[k] for k in ("role", "content", "metadata")} for m in read] == [as_returned(r) for r in requests]
    assert [o for m in read for o in threadstore_to_openai(m)] == OPENAI_CONVERSATION


async def test_a_ui_message_conversation_is_stored_and_read_back_unchanged(api: Api, user: str) -> None:
    requests = ui_stored(UI_CONVERSATION)
    read = await store_and_read_back(api, user, requests)
    assert [{k: m[k] for k in ("role", "content", "metadata")} for m in read] == [as_returned(r) for r in requests]
    assert [threadstore_to_ui(m) for m in read] == UI_CONVERSATION
