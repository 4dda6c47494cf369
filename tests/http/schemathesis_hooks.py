"""Schemathesis hooks for tests/http/test_schemathesis.py (loaded by the CLI through SCHEMATHESIS_HOOKS).

Some answers of the contract depend on the state of the data, which no schema can say; docs/api.md lists
them. An Idempotency-Key belongs to the first body sent with it (another body is 422, before the body is even
looked at), and generated keys repeat across cases: each case gets a key of its own, of the generated shape.
The other state-dependent 422s are recognised by the `loc` of the problem's error, so any other rejection of
schema-valid data still fails the run.
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import schemathesis
from schemathesis.openapi.checks import RejectedPositiveData

from threadstore.idempotency.schemas import KEY_PATTERN
from threadstore.limits import PARTS_CONTENT_MESSAGE
from threadstore.messages.parts import TOOL_MESSAGE

_VALID_KEY = re.compile(KEY_PATTERN)
_cases = itertools.count(1)


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    """A valid generated Idempotency-Key gets a suffix no other case has (a malformed one is left alone)."""
    for name, value in (case.headers or {}).items():
        if name.lower() == "idempotency-key" and isinstance(value, str) and _VALID_KEY.fullmatch(value):
            case.headers[name] = f"{value[:240]}~{next(_cases)}"
    return case


# (loc, msg) of the problems that answer state, not shape.
STATEFUL_REJECTIONS = {
    # A cursor of the right alphabet that the server never issued (a cursor is opaque: docs/api.md, 422).
    (("query", "cursor"), "invalid cursor"),
    # Auto-rename of a thread without a user message (API.md: 422).
    (("thread", "messages"), "no user message"),
    # A parent, a branch to switch to or a fork's message that is no message of the thread (API.md, "Branches": 422).
    (("body", "parent_id"), "not found"),
    (("body", "current_message_id"), "not found"),
    (("body", "message_id"), "not found"),
    # Two list selectors at once: OpenAPI cannot say that parameters exclude each other (API.md: 422).
    (("query", "leaf"), "mutually exclusive"),
    (("query", "siblings_of"), "mutually exclusive"),
    (("query", "view"), "mutually exclusive"),
}


# A tag character (U+E0000-U+E007F) outside a flag emoji, in a title or metadata key: the document says it
# in words, as its patterns are ECMA-262 \uXXXX classes, which cannot name an astral character that both
# ECMA-262 and Python's re (Schemathesis's) read alike (disguise.py, limits.py).
_TAG_CHARACTER_FOUND = re.compile(r"\(U\+E00[0-7][0-9A-F] found\)$")


# Structured content (API.md, "Structured content"): the content limit counts the strings of all parts together,
# and a tool message carries tool_result parts only. JSON Schema cannot sum lengths across an array, and the
# document says the role rule in words rather than as an if/then the generators may not honour.
def _said_of_parts(loc: tuple[Any, ...], msg: str) -> bool:
    if msg.startswith(PARTS_CONTENT_MESSAGE):
        return loc[-1:] == ("content",)
    return msg == TOOL_MESSAGE and loc[-1:] == ("type",) and "content" in loc


# Empty content (API.md, version 2): "" starts an in_progress reply and is 422 in any other message. The
# document allows "" in `Content` and says in words when; JSON Schema could say it only with an if/then over
# the sibling `status`, which the generators do not honour.
_EMPTY_CONTENT = re.compile(r"^content must be 1 to \d+ characters$")


def _said_of_empty_content(loc: tuple[Any, ...], msg: str) -> bool:
    return loc[-1:] == ("content",) and _EMPTY_CONTENT.match(msg) is not None


def _said_in_words(error: tuple[tuple[Any, ...], str]) -> bool:
    return (
        error in STATEFUL_REJECTIONS
        or _TAG_CHARACTER_FOUND.search(error[1]) is not None
        or _said_of_parts(*error)
        or _said_of_empty_content(*error)
    )


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    """False (drop the failure) only for a 422 whose every error is one of STATEFUL_REJECTIONS or a tag
    character outside a flag."""
    if not isinstance(failure, RejectedPositiveData) or response.status_code != 422:
        return True
    try:
        errors = json.loads(response.content)["errors"]
        found = {(tuple(error["loc"]), error["msg"]) for error in errors}
    except (ValueError, KeyError, TypeError):
        return True
    return not (found and all(_said_in_words(error) for error in found))
