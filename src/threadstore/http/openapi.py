"""The OpenAPI document, which generated clients and validators are built from, so it states what the server does.

Routers declare their answers with the maps below (`responses=`), one per kind of operation, so that each
status of the contract is declared once: `AUTHENTICATED` for every /api operation, `JSON_BODY` for those that
read a body, `ONE_THREAD` for those that name a thread. Every error is application/problem+json with the
`Problem` schema. `install()` completes what FastAPI builds: the components these name (`Problem`, and the
request limits rendered by `Limits.json_schemas()` with this server's settings), the bearer scheme, the
`X-Request-ID` header of every response, the `X-Read-After` of every write's answer, and the 500 any operation
may answer.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any, Literal

from fastapi import FastAPI
from pydantic import BaseModel, Field
from pydantic.json_schema import SkipJsonSchema

from threadstore.db.replica import POSITION_PATTERN
from threadstore.errors import PROBLEM_JSON
from threadstore.http.read_after import HEADER as READ_AFTER_HEADER
from threadstore.http.request_id import REQUEST_ID_PATTERN
from threadstore.limits import Limits

Responses = dict[int | str, dict[str, Any]]


def _ref(name: str) -> str:
    return f"#/components/schemas/{name}"


_MEANING = {
    400: "The request cannot be read: a malformed header (Idempotency-Key, Last-Event-ID, Content-Length) or body.",
    401: "The bearer token is missing, malformed, expired or not validly signed.",
    404: "No such thread for this user (another user's thread is indistinguishable from a missing one).",
    409: "The request conflicts with the thread's state.",
    412: "If-Match does not name the thread's current version (a weak or malformed tag never does).",
    413: "The request body is larger than the configured limit (THREADSTORE_MAX_BODY_BYTES).",
    415: "The request body is not application/json.",
    422: "The request is not valid: `errors` says where and why.",
    428: "This server requires If-Match on updates (THREADSTORE_REQUIRE_IF_MATCH).",
    500: "An internal error; the log has the details under the request id.",
    503: "The database is unreachable or busy (pool or lock timeout), or the server is shutting down. Retry after "
    "the number of seconds in Retry-After.",
}


def _header(description: str, pattern: str | None = None, *, required: bool = True) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if pattern:
        schema["pattern"] = pattern
    return {"description": description, "required": required, "schema": schema}


_PROBLEM_HEADERS = {
    401: {"WWW-Authenticate": _header("The scheme to authenticate with.", "^Bearer")},
    503: {"Retry-After": _header("Seconds to wait before retrying.", "^[0-9]+$")},
}

ETAG = {"ETag": _header('The thread\'s version as a strong entity tag, e.g. "4".', '^"[0-9]+"$')}
REPLAYED = {
    "Idempotent-Replayed": _header(
        "`true` when this is the stored response of an earlier request with the same Idempotency-Key.",
        "^true$",
        required=False,
    )
}


def problem(status: int, description: str | None = None) -> Responses:
    """One error answer of an operation, as FastAPI's `responses=` takes it."""
    answer: dict[str, Any] = {
        "description": description or _MEANING.get(status) or HTTPStatus(status).phrase,
        "content": {PROBLEM_JSON: {"schema": {"$ref": _ref(_PROBLEM_SCHEMAS.get(status, "Problem"))}}},
    }
    if status in _PROBLEM_HEADERS:
        answer["headers"] = _PROBLEM_HEADERS[status]
    return {status: answer}


def problems(*statuses: int) -> Responses:
    answers: Responses = {}
    for status in statuses:
        answers |= problem(status)
    return answers


_PROBLEM_SCHEMAS = {422: "ValidationProblem", 409: "ConflictProblem"}
AUTHENTICATED = problems(401, 503)
JSON_BODY = problems(400, 413, 415, 422)
ONE_THREAD = problems(404)


def thread_links(source: str) -> dict[str, Any]:
    """Links from an answer holding a thread id (at `source`, a runtime expression) to the operations on that
    thread: documentation for clients, and the paths stateful tests follow."""
    operations = (
        "get_thread",
        "update_thread",
        "delete_thread",
        "auto_rename_thread",
        "create_message",
        "list_messages",
    )
    return {op: {"operationId": op, "parameters": {"thread_id": source}} for op in operations}


class ValidationIssue(BaseModel):
    loc: list[str | int] = Field(description='Where: e.g. ["body", "messages", 0, "content"] or ["query", "cursor"].')
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem: no exception text, SQL or paths, ever."""

    type: Annotated[str, Field(pattern=r"^urn:threadstore:problem:[a-z0-9-]+$")]
    title: str = Field(description="The HTTP reason phrase.")
    status: Annotated[int, Field(ge=400, le=599)]
    detail: str
    request_id: Annotated[str, Field(pattern=REQUEST_ID_PATTERN, description="Equals the X-Request-ID header.")]


class ValidationProblem(Problem):
    errors: list[ValidationIssue]


class ConflictProblem(Problem):
    reason: Literal["in-flight", "archived", "version", "offset", "state", "expired"] = Field(
        description="Which conflict: an Idempotency-Key's first request is in flight, the thread is archived, it "
        "moved on (version), a delta's offset, a message's state, or a resume past the kept events (expired)."
    )
    length: int | SkipJsonSchema[None] = Field(
        default=None, description="With reason `offset` only: the stored length, in characters, to resume at."
    )


def install(app: FastAPI, limits: Limits) -> None:
    """Makes `app.openapi()` return the completed document (built once, on first use)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            for model in (Problem, ValidationProblem, ConflictProblem):
                _add_model(schemas, model)
            schemas |= limits.json_schemas()
            schemas.pop("HTTPValidationError", None)  # FastAPI's 422 shape, which this server never answers
            schemas.pop("ValidationError", None)
            document["components"]["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            }
            for path, operations in document.get("paths", {}).items():
                for method, operation in operations.items():
                    _complete(path, method, operation)
            app.openapi_schema = _plain_refs(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _complete(path: str, method: str, operation: dict[str, Any]) -> None:
    if path.startswith("/api/"):
        operation["security"] = [{"bearer": []}]
    answers = operation.setdefault("responses", {})
    # FastAPI declares its own 422 for any operation with parameters; the routers declare the real ones.
    if "HTTPValidationError" in str(answers.get("422", "")):
        del answers["422"]
    answers.setdefault("500", problem(500)[500])
    for answer in answers.values():
        answer.setdefault("headers", {})["X-Request-ID"] = _header(
            "This request's id: the request's own X-Request-ID when it is valid, else a new one.", REQUEST_ID_PATTERN
        )
    if path.startswith("/api/") and method != "get":
        for status, answer in answers.items():
            if str(status).startswith("2"):
                answer["headers"][READ_AFTER_HEADER] = _READ_AFTER


_READ_AFTER = _header(
    "Where a read replica is configured: the primary's WAL position after this write committed. A later read "
    "that sends it back as X-Read-After sees this write, on any instance.",
    POSITION_PATTERN,
    required=False,
)


def _plain_refs(node: Any) -> Any:
    """`{"allOf": [{"$ref": X}], …}` (how the Limits' types name their schemas, see limits.py) as
    `{"$ref": X, …}`: the same schema, said plainly, which tools read more reliably."""
    if isinstance(node, list):
        return [_plain_refs(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _plain_refs(value) for key, value in node.items()}
    every = node.get("allOf")
    if isinstance(every, list) and len(every) == 1 and set(every[0]) == {"$ref"}:
        del node["allOf"]
        node["$ref"] = every[0]["$ref"]
    return node


def _add_model(schemas: dict[str, Any], model: type[BaseModel]) -> None:
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    schemas[model.__name__] = schema
