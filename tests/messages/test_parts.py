"""Structured content (API.md, "Structured content"): every part type's accepted shapes, each rule's 422 with a
`loc` that names the part's index and field, the content limit counting every string, and `text_of`,
`characters` and `wire` (messages/parts.py)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.conftest import Api, Factory
from tests.http.problems import assert_problem, message_count
from tests.http.test_openapi import document
from threadstore.messages.parts import MAX_PARTS, characters, text_of, validate, wire

# Valid requests are refused at storage until the parts column exists; the lead removes the mark on merging.

CALL = {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": '{"city": "Lisbon"}'}
RESULT = {"type": "tool_result", "tool_call_id": "call_1", "content": '{"celsius": 21}'}

# (sent, as it is stored and returned)
ACCEPTED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "text": ({"type": "text", "text": "Hello"}, {"type": "text", "text": "Hello"}),
    "reasoning": ({"type": "reasoning", "text": "The user asks…"}, {"type": "reasoning", "text": "The user asks…"}),
    "tool_call": (CALL, CALL),
    "tool_call-empty-arguments": ({**CALL, "arguments": ""}, {**CALL, "arguments": ""}),
    "tool_call-longest-id-and-name": (
        {**CALL, "id": "i" * 128, "name": "n" * 128},
        {**CALL, "id": "i" * 128, "name": "n" * 128},
    ),
    "tool_result": (RESULT, {**RESULT, "is_error": False}),
    "tool_result-error": ({**RESULT, "is_error": True}, {**RESULT, "is_error": True}),
    "image-https": (
        {"type": "image", "url": "https://example.com/a.png"},
        {"type": "image", "url": "https://example.com/a.png"},
    ),
    "image-http": (
        {"type": "image", "url": "http://example.com/a.png"},
        {"type": "image", "url": "http://example.com/a.png"},
    ),
    "image-data": (
        {"type": "image", "url": "data:image/png;base64,iVBORw0KGgo="},
        {"type": "image", "url": "data:image/png;base64,iVBORw0KGgo="},
    ),
    "image-upper-case-scheme": (
        {"type": "image", "url": "HTTPS://EXAMPLE.COM/A"},
        {"type": "image", "url": "HTTPS://EXAMPLE.COM/A"},
    ),
    "file": (
        {"type": "file", "url": "https://example.com/r.pdf"},
        {"type": "file", "url": "https://example.com/r.pdf", "name": None, "mime_type": None},
    ),
    "file-named": (
        {"type": "file", "url": "https://example.com/r.pdf", "name": "report.pdf", "mime_type": "application/pdf"},
        {"type": "file", "url": "https://example.com/r.pdf", "name": "report.pdf", "mime_type": "application/pdf"},
    ),
    "file-explicit-nulls": (
        {"type": "file", "url": "data:text/plain,hi", "name": None, "mime_type": None},
        {"type": "file", "url": "data:text/plain,hi", "name": None, "mime_type": None},
    ),
}


ACCEPTED_TYPES = ["text", "reasoning", "tool_call", "tool_result", "image", "file"]
assert {sent["type"] for sent, _ in ACCEPTED.values()} == set(ACCEPTED_TYPES)


def messages_url(thread: dict[str, Any]) -> str:
    return f"/api/threads/{thread['id']}/messages"


async def post(api: Api, user: str, thread: dict[str, Any], **body: Any) -> Any:
    return await api.request("POST", messages_url(thread), user=user, json=body)


async def listed(api: Api, user: str, thread: dict[str, Any]) -> list[dict[str, Any]]:
    response = await api.request("GET", messages_url(thread), user=user)
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


async def refused(api: Api, user: str, thread: dict[str, Any], **body: Any) -> list[dict[str, Any]]:
    """The errors of the 422 that refused the append, after checking that nothing was stored."""
    problem = assert_problem(await post(api, user, thread, **body), 422)
    assert problem["type"] == "urn:threadstore:problem:validation-error"
    assert problem["detail"] == "The request is not valid."
    assert await message_count(api, thread["id"]) == 0
    errors: list[dict[str, Any]] = problem["errors"]
    return errors


def locs(errors: list[dict[str, Any]]) -> list[list[Any]]:
    return [error["loc"] for error in errors]


# --- accepted -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(ACCEPTED))
async def test_each_part_type_is_stored_and_returned_with_absent_fields_null(
    api: Api, user: str, create_thread: Factory, name: str
) -> None:
    sent, stored = ACCEPTED[name]
    thread = await create_thread()
    role = "tool" if sent["type"] == "tool_result" else "assistant"
    response = await post(api, user, thread, role=role, content=[sent])
    assert response.status_code == 201, response.text
    assert response.json()["content"] == [stored]
    [message] = await listed(api, user, thread)
    assert message["content"] == [stored]


async def test_a_message_of_every_part_type_reads_back_as_its_wire_form(
    api: Api, user: str, create_thread: Factory
) -> None:
    # An empty text part is fine among others (only content of no character at all is refused).
    sent = [sent for sent, _ in ACCEPTED.values() if sent["type"] != "tool_result"] + [RESULT]
    sent.append({"type": "text", "text": ""})
    thread = await create_thread()
    response = await post(api, user, thread, role="assistant", content=sent)
    assert response.status_code == 201, response.text
    expected = wire(validate(sent))
    assert response.json()["content"] == expected
    assert [m["content"] for m in await listed(api, user, thread)] == [expected]


async def test_an_array_of_100_parts_is_accepted(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    sent = [{"type": "text", "text": str(i)} for i in range(MAX_PARTS)]
    response = await post(api, user, thread, content=sent)
    assert response.status_code == 201, response.text
    assert response.json()["content"] == sent


async def test_a_threads_initial_messages_take_parts(api: Api, user: str) -> None:
    initial: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Lisbon?"}]},
        {"role": "assistant", "content": [CALL]},
        {"role": "tool", "content": [RESULT]},
        {"role": "assistant", "content": "21 °C."},
    ]
    response = await api.request("POST", "/api/threads", user=user, json={"messages": initial})
    assert response.status_code == 201, response.text
    stored = [m["content"] for m in await listed(api, user, response.json())]
    assert stored == [initial[0]["content"], [CALL], [{**RESULT, "is_error": False}], "21 °C."]


async def test_a_tool_message_may_still_be_a_string(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    response = await post(api, user, thread, role="tool", content="21 °C")
    assert response.status_code == 201, response.text


# --- refused: the shape of each part --------------------------------------------------------------------------

# (part, the field `loc` names after the index) — each one rule of the contract broken.
REFUSED: dict[str, tuple[Any, tuple[str, ...]]] = {
    "unknown-type": ({"type": "video", "url": "https://example.com/v.mp4"}, ("type",)),
    "type-of-another-case": ({"type": "Text", "text": "hi"}, ("type",)),
    "no-type": ({"text": "hi"}, ("type",)),
    "type-not-a-string": ({"type": 1, "text": "hi"}, ("type",)),
    "not-an-object": ("hi", ()),
    "null-part": (None, ()),
    "unknown-field": ({"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}, ("cache_control",)),
    "field-of-another-type": ({"type": "image", "url": "https://example.com/a.png", "name": "a.png"}, ("name",)),
    "text-missing": ({"type": "text"}, ("text",)),
    "text-not-a-string": ({"type": "text", "text": 5}, ("text",)),
    "text-null": ({"type": "text", "text": None}, ("text",)),
    "text-with-nul": ({"type": "text", "text": "a\x00b"}, ("text",)),
    "reasoning-missing": ({"type": "reasoning"}, ("text",)),
    "tool_call-id-empty": ({**CALL, "id": ""}, ("id",)),
    "tool_call-id-129": ({**CALL, "id": "i" * 129}, ("id",)),
    "tool_call-id-missing": ({k: v for k, v in CALL.items() if k != "id"}, ("id",)),
    "tool_call-name-empty": ({**CALL, "name": ""}, ("name",)),
    "tool_call-name-129": ({**CALL, "name": "n" * 129}, ("name",)),
    "tool_call-arguments-object": ({**CALL, "arguments": {"city": "Lisbon"}}, ("arguments",)),
    "tool_call-arguments-missing": ({k: v for k, v in CALL.items() if k != "arguments"}, ("arguments",)),
    "tool_call-arguments-with-nul": ({**CALL, "arguments": '{"a": "\x00"}'}, ("arguments",)),
    "tool_result-tool_call_id-empty": ({**RESULT, "tool_call_id": ""}, ("tool_call_id",)),
    "tool_result-tool_call_id-129": ({**RESULT, "tool_call_id": "c" * 129}, ("tool_call_id",)),
    "tool_result-content-object": ({**RESULT, "content": {"celsius": 21}}, ("content",)),
    "tool_result-is_error-string": ({**RESULT, "is_error": "true"}, ("is_error",)),
    "tool_result-is_error-number": ({**RESULT, "is_error": 1}, ("is_error",)),
    "tool_result-is_error-null": ({**RESULT, "is_error": None}, ("is_error",)),
    "image-url-missing": ({"type": "image"}, ("url",)),
    "file-name-not-a-string": ({"type": "file", "url": "https://example.com/r.pdf", "name": 3}, ("name",)),
    "file-mime_type-with-nul": ({"type": "file", "url": "https://x/r", "mime_type": "a\x00"}, ("mime_type",)),
}


@pytest.mark.parametrize("name", list(REFUSED))
async def test_a_part_breaking_a_rule_is_422_naming_its_index_and_field(
    api: Api, user: str, create_thread: Factory, name: str
) -> None:
    part, field = REFUSED[name]
    thread = await create_thread()
    # At index 2, after valid parts, so the index in `loc` is the part's and not a default 0.
    content = [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}, part]
    errors = await refused(api, user, thread, role="assistant", content=content)
    assert locs(errors) == [["body", "content", 2, *field]]


BAD_URLS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "ftp://example.com/a.png",
    "file:///etc/passwd",
    "vbscript:msgbox",
    "blob:https://example.com/uuid",
    "//example.com/a.png",
    "example.com/a.png",
    " https://example.com/a.png",
    "https:/example.com",
    "",
]


@pytest.mark.parametrize("kind", ["image", "file"])
@pytest.mark.parametrize("url", BAD_URLS)
async def test_a_url_of_any_other_scheme_is_422(
    api: Api, user: str, create_thread: Factory, kind: str, url: str
) -> None:
    thread = await create_thread()
    errors = await refused(api, user, thread, content=[{"type": "text", "text": "see"}, {"type": kind, "url": url}])
    assert errors == [{"loc": ["body", "content", 1, "url"], "msg": "url must start with https://, http:// or data:"}]


async def test_an_unpaired_surrogate_in_a_part_is_422(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    body = b'{"content": [{"type": "text", "text": "ok"}, {"type": "reasoning", "text": "a\\ud800b"}]}'
    response = await api.request(
        "POST", messages_url(thread), user=user, content=body, headers={"Content-Type": "application/json"}
    )
    problem = assert_problem(response, 422)
    assert locs(problem["errors"]) == [["body", "content", 1, "text"]]


async def test_every_broken_part_is_reported_at_once(api: Api, user: str, create_thread: Factory) -> None:
    thread = await create_thread()
    content = [
        {"type": "text", "text": "fine"},
        {"type": "image", "url": "ftp://x"},
        {"type": "tool_call", "id": "", "name": "f", "arguments": {}},
        {"type": "sound"},
    ]
    errors = await refused(api, user, thread, role="assistant", content=content)
    assert locs(errors) == [
        ["body", "content", 1, "url"],
        ["body", "content", 2, "id"],
        ["body", "content", 2, "arguments"],
        ["body", "content", 3, "type"],
    ]


@pytest.mark.parametrize("count", [0, MAX_PARTS + 1])
async def test_an_array_of_0_or_101_parts_is_422(api: Api, user: str, create_thread: Factory, count: int) -> None:
    thread = await create_thread()
    errors = await refused(api, user, thread, content=[{"type": "text", "text": "x"}] * count)
    assert errors == [{"loc": ["body", "content"], "msg": "content must hold 1 to 100 parts"}]


@pytest.mark.parametrize("content", [5, None, {"type": "text", "text": "hi"}, True])
async def test_content_of_any_other_json_type_is_one_422(
    api: Api, user: str, create_thread: Factory, content: Any
) -> None:
    thread = await create_thread()
    errors = await refused(api, user, thread, content=content)
    assert errors == [{"loc": ["body", "content"], "msg": "content must be a string or an array of parts"}]


@pytest.mark.parametrize(
    "part",
    [
        {"type": "text", "text": "It is sunny."},
        {"type": "reasoning", "text": "…"},
        CALL,
        {"type": "image", "url": "https://example.com/a.png"},
        {"type": "file", "url": "https://example.com/a.pdf"},
    ],
    ids=lambda part: part["type"],
)
async def test_a_tool_message_with_a_part_other_than_tool_result_is_422(
    api: Api, user: str, create_thread: Factory, part: dict[str, Any]
) -> None:
    thread = await create_thread()
    errors = await refused(api, user, thread, role="tool", content=[RESULT, part])
    assert errors == [{"loc": ["body", "content", 1, "type"], "msg": "a tool message carries tool_result parts only"}]


async def test_an_initial_message_names_its_own_index_and_its_parts(api: Api, user: str) -> None:
    initial = [
        {"content": "hi"},
        {"role": "assistant", "content": [{"type": "text", "text": "see"}, {"type": "image", "url": "file:///x"}]},
        {"role": "tool", "content": [{"type": "text", "text": "x"}]},
    ]
    response = await api.request("POST", "/api/threads", user=user, json={"messages": initial})
    problem = assert_problem(response, 422)
    assert locs(problem["errors"]) == [
        ["body", "messages", 1, "content", 1, "url"],
        ["body", "messages", 2, "content", 0, "type"],
    ]


async def test_a_parts_422_has_the_shape_of_every_other_validation_error(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread()
    bad_part = assert_problem(await post(api, user, thread, content=[{"type": "image", "url": "ftp://x"}]), 422)
    bad_role = assert_problem(await post(api, user, thread, content="hi", role="robot"), 422)
    same = ("type", "title", "status", "detail")
    assert {k: bad_part[k] for k in same} == {k: bad_role[k] for k in same}
    assert set(bad_part) == set(bad_role)
    # Nothing of the request echoed back (pydantic's "input"), nor its internals ("ctx", "url", "type").
    assert bad_part["errors"] == [
        {"loc": ["body", "content", 0, "url"], "msg": "url must start with https://, http:// or data:"}
    ]


# --- the content limit counts every string ----------------------------------------------------------------------

LIMIT = 60


def every_field(pad: str = "") -> list[dict[str, Any]]:
    """A part of every type, every optional string set: 60 characters of strings (types not counted), and one
    more in the field `pad` names ("part index.field")."""
    content: list[dict[str, Any]] = [
        {"type": "text", "text": "aaaaa"},
        {"type": "reasoning", "text": "bbbbb"},
        {"type": "tool_call", "id": "ccccc", "name": "ddddd", "arguments": "eeeee"},
        {"type": "tool_result", "tool_call_id": "fffff", "content": "ggggg", "is_error": True},
        {"type": "image", "url": "data:"},
        {"type": "file", "url": "data:", "name": "hhhhh", "mime_type": "iiiii"},
    ]
    assert characters(validate(content)) == 55
    content[0]["text"] += "jjjjj"  # 60: exactly the limit
    if pad:
        index, field = pad.split(".")
        content[int(index)][field] += "+"
    return content


FIELDS = [
    "0.text",
    "1.text",
    "2.id",
    "2.name",
    "2.arguments",
    "3.tool_call_id",
    "3.content",
    "4.url",
    "5.url",
    "5.name",
    "5.mime_type",
]


# The limit of the tests below (module-wide it would refuse the long strings of the tests above).
limited = pytest.mark.parametrize("settings_overrides", [{"max_content_chars": LIMIT}], ids=[f"limit-{LIMIT}"])


@limited
async def test_parts_whose_strings_together_reach_the_limit_are_accepted(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread()
    # The six `type` values (46 characters) would pass the limit if they were counted.
    response = await post(api, user, thread, role="assistant", content=every_field())
    assert response.status_code == 201, response.text


@limited
@pytest.mark.parametrize("field", FIELDS)
async def test_one_character_more_in_any_string_of_any_part_is_422(
    api: Api, user: str, create_thread: Factory, field: str
) -> None:
    thread = await create_thread()
    errors = await refused(api, user, thread, role="assistant", content=every_field(field))
    assert errors == [
        {
            "loc": ["body", "content"],
            "msg": f"the strings of all parts but their type must hold, together, 1 to {LIMIT} characters",
        }
    ]


@limited
async def test_parts_of_no_character_at_all_are_422_like_empty_string_content(
    api: Api, user: str, create_thread: Factory
) -> None:
    thread = await create_thread()
    errors = await refused(api, user, thread, content=[{"type": "text", "text": ""}, {"type": "reasoning", "text": ""}])
    assert locs(errors) == [["body", "content"]]


@limited
async def test_the_limit_counts_the_parts_of_an_initial_message(api: Api, user: str) -> None:
    initial = [{"content": "hi"}, {"role": "assistant", "content": every_field("3.content")}]
    response = await api.request("POST", "/api/threads", user=user, json={"messages": initial})
    assert locs(assert_problem(response, 422)["errors"]) == [["body", "messages", 1, "content"]]


# --- text_of, characters, wire ---------------------------------------------------------------------------------


def test_text_of_joins_the_text_parts_with_a_newline_and_skips_every_other_part() -> None:
    parts = validate(
        [
            {"type": "reasoning", "text": "Think."},
            {"type": "text", "text": "Let me check."},
            CALL,
            RESULT,
            {"type": "text", "text": "It is sunny."},
            {"type": "image", "url": "https://example.com/a.png"},
        ]
    )
    assert text_of(parts) == "Let me check.\nIt is sunny."
    assert text_of(validate([CALL])) == ""


def test_characters_counts_every_string_but_type_and_nothing_else() -> None:
    assert characters(validate([{"type": "text", "text": "héllo"}])) == 5
    assert characters(validate([{"type": "file", "url": "data:"}])) == 5  # absent name and mime_type count 0
    assert characters(validate([{"type": "file", "url": "data:", "name": "ab", "mime_type": "c/d"}])) == 10
    assert characters(validate([{**RESULT, "is_error": True}])) == len("call_1") + len('{"celsius": 21}')
    assert characters(validate([CALL, CALL])) == 2 * len("call_1get_weather" + '{"city": "Lisbon"}')
    assert characters(validate([{"type": "text", "text": "😀"}])) == 1  # Python len: code points


def test_wire_has_every_field_with_absent_optional_ones_null_and_is_error_false() -> None:
    for sent, stored in ACCEPTED.values():
        assert wire(validate([sent])) == [stored]
    assert list(wire(validate([RESULT]))[0]) == ["type", "tool_call_id", "content", "is_error"]


def test_the_wire_form_is_valid_content_again() -> None:
    # A client that reads a message and sends its content back (a copy, an edit) sends explicit nulls.
    sent = [sent for sent, _ in ACCEPTED.values()]
    assert wire(validate(wire(validate(sent)))) == wire(validate(sent))


def test_validate_names_the_index_and_field_without_the_union_or_its_tag() -> None:
    with pytest.raises(ValidationError) as failed:
        validate([{"type": "text", "text": "a"}, {"type": "file", "url": "https://x", "size": 3}])
    assert [error["loc"] for error in failed.value.errors()] == [(1, "size")]


# --- the OpenAPI document ----------------------------------------------------------------------------------------


@pytest.fixture
def schemas(tmp_path: Path) -> dict[str, Any]:
    found: dict[str, Any] = document(tmp_path)["components"]["schemas"]
    return found


def test_the_document_offers_content_as_a_string_or_an_array_of_the_six_parts(schemas: dict[str, Any]) -> None:
    for model in ("MessageCreate", "MessageContent"):
        string, array = schemas[model]["properties"]["content"]["anyOf"]
        assert string == {"$ref": "#/components/schemas/Content"}
        assert array["minItems"] == 1 and array["maxItems"] == MAX_PARTS
        assert set(array["items"]["discriminator"]["mapping"]) == set(ACCEPTED_TYPES)
    for name in ("TextPart", "ReasoningPart", "ToolCallPart", "ToolResultPart", "ImagePart", "FilePart"):
        assert schemas[name]["additionalProperties"] is False


def test_the_document_says_a_returned_part_has_every_field(schemas: dict[str, Any]) -> None:
    [_, array] = schemas["MessageOut"]["properties"]["content"]["anyOf"]
    returned = {t: ref.rsplit("/", 1)[1] for t, ref in array["items"]["discriminator"]["mapping"].items()}
    assert set(schemas[returned["file"]]["required"]) == {"type", "url", "name", "mime_type"}
    assert set(schemas[returned["tool_result"]]["required"]) == {"type", "tool_call_id", "content", "is_error"}
    assert set(schemas["ToolResultPart"]["required"]) == {"type", "tool_call_id", "content"}  # as sent


URLS = [*BAD_URLS, "https://a", "http://a", "data:", "data:,x", "Data:text/plain,x", "hTTpS://a", "https://a\x00"]


def test_the_url_pattern_accepts_exactly_the_urls_the_server_accepts(schemas: dict[str, Any]) -> None:
    pattern = re.compile(schemas["ImagePart"]["properties"]["url"]["pattern"])
    assert schemas["FilePart"]["properties"]["url"]["pattern"] == pattern.pattern
    for url in URLS:
        try:
            validate([{"type": "image", "url": url}])
            accepted = True
        except ValidationError:
            accepted = False
        assert bool(pattern.search(url)) is accepted, repr(url)
