"""The OpenAPI document states what the server does: every status and content type the contract gives an
operation, errors as application/problem+json, and the request limits with this server's numbers. (That the
server then answers as the document says is tests/http/test_schemathesis.py's job.)"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from tests.harness.databases import JWT_SECRET
from threadstore.app import create_app
from threadstore.config import Settings
from threadstore.http.preconditions import IF_MATCH_PATTERN
from threadstore.idempotency.schemas import KEY_PATTERN
from threadstore.ids import id_pattern
from threadstore.limits import CONTROL_CHARACTERS, WHITE_SPACE, Limits, title_pattern

PROBLEM = "application/problem+json"

# API.md's statuses, operation by operation (500 anywhere; 503 wherever the database is used).
STATUSES = {
    ("post", "/api/threads"): {201, 400, 401, 404, 409, 413, 415, 422, 500, 503},
    ("get", "/api/threads"): {200, 401, 422, 500, 503},
    ("get", "/api/search"): {200, 401, 422, 500, 503},
    ("post", "/api/events/session"): {204, 401, 500},  # no database: no 503
    ("get", "/api/threads/{thread_id}"): {200, 304, 401, 404, 422, 500, 503},
    ("patch", "/api/threads/{thread_id}"): {200, 400, 401, 404, 409, 412, 413, 415, 422, 428, 500, 503},
    ("delete", "/api/threads/{thread_id}"): {200, 204, 401, 404, 422, 500, 503},
    ("post", "/api/threads/{thread_id}/auto-rename"): {200, 401, 404, 409, 422, 500, 503},
    ("post", "/api/threads/{thread_id}/messages"): {201, 400, 401, 404, 409, 413, 415, 422, 500, 503},
    ("get", "/api/threads/{thread_id}/messages"): {200, 401, 404, 422, 500, 503},
    ("get", "/api/threads/{thread_id}/messages/{message_id}"): {200, 401, 404, 422, 500, 503},
    ("delete", "/api/threads/{thread_id}/messages/{message_id}"): {204, 401, 404, 409, 422, 500, 503},
    ("patch", "/api/threads/{thread_id}/messages/{message_id}"): {200, 400, 401, 404, 409, 413, 415, 422, 500, 503},
    ("post", "/api/threads/{thread_id}/messages/{message_id}/deltas"): {
        200,
        400,
        401,
        404,
        409,
        413,
        415,
        422,
        500,
        503,
    },
    ("put", "/api/threads/{thread_id}/messages/{message_id}/feedback"): {
        200,
        400,
        401,
        404,
        409,
        413,
        415,
        422,
        500,
        503,
    },
    ("delete", "/api/threads/{thread_id}/messages/{message_id}/feedback"): {204, 401, 404, 409, 422, 500, 503},
    ("post", "/api/threads/{thread_id}/fork"): {201, 400, 401, 404, 409, 413, 415, 422, 500, 503},
    ("get", "/api/events"): {200, 400, 401, 404, 409, 500, 503},
    ("get", "/healthz"): {200, 500},
    ("get", "/readyz"): {200, 500, 503},
    ("get", "/metrics"): {200, 500},
}


def document(tmp_path: Path, **settings: Any) -> dict[str, Any]:
    app = create_app(Settings(_env_file=None, jwt_secret=JWT_SECRET, data_dir=tmp_path, **settings))
    return app.openapi()


@pytest.fixture
def doc(tmp_path: Path) -> dict[str, Any]:
    return document(tmp_path)


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method, path): op for path, ops in doc["paths"].items() for method, op in ops.items()}


def test_each_operation_declares_exactly_the_statuses_the_contract_gives_it(doc: dict[str, Any]) -> None:
    declared = {key: {int(status) for status in op["responses"]} for key, op in operations(doc).items()}
    assert declared == STATUSES


def test_every_error_is_problem_json_with_the_problem_schema(doc: dict[str, Any]) -> None:
    for (method, path), op in operations(doc).items():
        for status, answer in op["responses"].items():
            if int(status) >= 400:
                expected = {"422": "ValidationProblem", "409": "ConflictProblem"}.get(status, "Problem")
                assert answer["content"] == {PROBLEM: {"schema": {"$ref": f"#/components/schemas/{expected}"}}}, (
                    method,
                    path,
                    status,
                )
    problem = doc["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "request_id"}
    assert "errors" in doc["components"]["schemas"]["ValidationProblem"]["required"]
    # API.md version 2: a 409 says which conflict it is
    assert "reason" in doc["components"]["schemas"]["ConflictProblem"]["required"]


def test_the_headers_the_contract_promises_are_declared(doc: dict[str, Any]) -> None:
    ops = operations(doc)
    for (method, path), op in ops.items():
        for answer in op["responses"].values():
            assert answer["headers"]["X-Request-ID"]["required"] is True, (method, path)
        if 401 in STATUSES[method, path]:
            assert "WWW-Authenticate" in op["responses"]["401"]["headers"]
        if 503 in STATUSES[method, path]:
            assert "Retry-After" in op["responses"]["503"]["headers"]
    created = ops["post", "/api/threads"]["responses"]["201"]["headers"]
    assert {"Location", "ETag", "Idempotent-Replayed"} <= set(created)
    assert "ETag" in ops["get", "/api/threads/{thread_id}"]["responses"]["304"]["headers"]
    assert "X-Title-Source" in ops["post", "/api/threads/{thread_id}/auto-rename"]["responses"]["200"]["headers"]


def test_metrics_is_prometheus_text_and_events_a_stream_of_typed_events(doc: dict[str, Any]) -> None:
    ops = operations(doc)
    assert set(ops["get", "/metrics"]["responses"]["200"]["content"]) == {"text/plain"}
    stream = ops["get", "/api/events"]["responses"]["200"]["content"]
    assert set(stream) == {"text/event-stream"}
    kinds = {event["properties"]["event"]["const"] for event in stream["text/event-stream"]["schema"]["oneOf"]}
    version_1 = {"thread.created", "thread.updated", "thread.deleted", "message.created"}
    assert kinds == version_1 | {"message.deleted", "message.delta", "message.updated"}


def test_null_is_offered_only_where_the_server_takes_it(doc: dict[str, Any]) -> None:
    patch = doc["components"]["schemas"]["ThreadPatch"]["properties"]
    assert "null" not in str(patch["status"]) and "null" not in str(patch["metadata"])
    assert "null" in str(patch["title"])  # null clears the title
    for (method, path), op in operations(doc).items():
        for parameter in op.get("parameters", []):
            assert "null" not in str(parameter["schema"]), (method, path, parameter["name"])


def test_header_formats_are_the_patterns_the_server_checks(doc: dict[str, Any]) -> None:
    def parameter(method: str, path: str, name: str) -> dict[str, Any]:
        [found] = [p for p in operations(doc)[method, path]["parameters"] if p["name"].lower() == name.lower()]
        return found["schema"]

    assert parameter("post", "/api/threads", "Idempotency-Key")["pattern"] == KEY_PATTERN
    assert parameter("patch", "/api/threads/{thread_id}", "If-Match")["pattern"] == IF_MATCH_PATTERN
    assert parameter("get", "/api/events", "Last-Event-ID")["pattern"] == "^([0-9]{1,18})?$"
    assert parameter("get", "/api/events", "thread_id")["pattern"] == id_pattern("thr")
    assert parameter("get", "/api/threads", "cursor")["pattern"] == "^[A-Za-z0-9_-]*$"
    assert parameter("get", "/api/threads", "limit").items() >= {"minimum": 1, "maximum": 100}.items()


def test_the_request_limits_are_this_servers_configured_ones(tmp_path: Path) -> None:
    limits = {"max_title_chars": 10, "max_content_chars": 100, "max_metadata_keys": 3}
    schemas = document(tmp_path, **limits, max_metadata_key_chars=5, max_initial_messages=7)["components"]["schemas"]
    # minLength 0: an in_progress reply may start empty (API.md, version 2); "" otherwise is the service's 422.
    assert schemas["Content"].items() >= {"maxLength": 100}.items() and "minLength" not in schemas["Content"]
    assert schemas["Metadata"]["maxProperties"] == 3
    assert schemas["Metadata"]["propertyNames"].items() >= {"minLength": 1, "maxLength": 5}.items()
    assert schemas["InitialMessages"]["maxItems"] == 7
    assert schemas["Title"]["pattern"] == title_pattern(10)
    # API.md version 2: content is a string (the configured limit) or an array of parts
    string, array = schemas["MessageCreate"]["properties"]["content"]["anyOf"]
    assert string == {"$ref": "#/components/schemas/Content"}
    assert array.items() >= {"type": "array", "minItems": 1, "maxItems": 100}.items()


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    refs = set(re.findall(r"'\$ref': '#/components/schemas/(\w+)'", str(doc)))
    assert refs and refs <= set(doc["components"]["schemas"])


def test_the_character_classes_are_pythons() -> None:
    everything = [chr(code) for code in range(0x110000)]
    assert {ch for ch in everything if ch.isspace()} == WHITE_SPACE
    assert {ch for ch in everything if unicodedata.category(ch) == "Cc"} == CONTROL_CHARACTERS


TITLES = [
    *["a", "ab", " a ", "a b", "\ta\n", "\u3000Lisbon\u2029", "é", "x" * 8, " " + "x" * 8 + "\u00a0"],
    *["", " ", "\t\n", "x" * 9, "a\tb", "a\x00b", "\x85", "a\x9fb", "\x7f", "a\u200bb", "a\u2028b"],
    *[f"a{ch}b" for ch in sorted(WHITE_SPACE | CONTROL_CHARACTERS)],
    *[f"{ch}a{ch}" for ch in sorted(WHITE_SPACE | CONTROL_CHARACTERS)],
]


def test_the_title_pattern_accepts_exactly_the_titles_the_server_accepts() -> None:
    limits = Limits(
        title_chars=8, metadata_keys=1, metadata_key_chars=1, metadata_bytes=2, content_chars=1, initial_messages=0
    )
    pattern = re.compile(limits.json_schemas()["Title"]["pattern"])
    for title in TITLES:
        try:
            limits.title(title, ("title",))
            accepted = True
        except Exception:
            accepted = False
        assert bool(pattern.search(title)) is accepted, repr(title)
