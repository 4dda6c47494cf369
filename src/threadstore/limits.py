"""The configurable size limits of API.md, checked in one place so every endpoint applies them alike, and
described in the same place: `Limits.json_schemas()` renders each rule as the JSON Schema that the OpenAPI
document gives for it, from the same numbers, so the document states what this server enforces."""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Protocol, TypeVar

import orjson
from pydantic import AfterValidator, StrictStr, WithJsonSchema

from threadstore import disguise
from threadstore.config import Settings
from threadstore.errors import Unprocessable

Loc = tuple[str | int, ...]


class Counted(Protocol):
    """A part of structured content (messages/parts.py), as the content limit sees it."""

    def characters(self) -> int: ...


C = TypeVar("C", bound=str | Sequence[Counted])


def _reject(loc: Loc, msg: str) -> Unprocessable:
    return Unprocessable("The request is not valid.", errors=[{"loc": list(loc), "msg": msg}])


@dataclass(frozen=True)
class Limits:
    title_chars: int
    metadata_keys: int
    metadata_key_chars: int
    metadata_bytes: int
    content_chars: int
    initial_messages: int

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            title_chars=settings.max_title_chars,
            metadata_keys=settings.max_metadata_keys,
            metadata_key_chars=settings.max_metadata_key_chars,
            metadata_bytes=settings.max_metadata_bytes,
            content_chars=settings.max_content_chars,
            initial_messages=settings.max_initial_messages,
        )

    def title(self, value: str, loc: Loc) -> str:
        trimmed = value.strip()
        if not 1 <= len(trimmed) <= self.title_chars:
            raise _reject(loc, f"title must be 1 to {self.title_chars} characters after trimming")
        if any(ch in CONTROL_CHARACTERS for ch in trimmed):
            raise _reject(loc, "title must not contain control characters")
        if not is_utf8(trimmed):
            raise _reject(loc, SURROGATE_MESSAGE)
        if (character := disguise.find(trimmed)) is not None:
            raise _reject(loc, disguise_message("title", character))
        return trimmed

    def metadata(self, value: dict[str, Any], loc: Loc, *, kept: Collection[str] = ()) -> dict[str, Any]:
        """`kept`: keys already stored, which the characters rule does not judge again (it is newer than
        some of them, and a merge patch that leaves them alone must still apply)."""
        if len(value) > self.metadata_keys:
            raise _reject(loc, f"metadata may have at most {self.metadata_keys} keys")
        for key in value:
            if not 1 <= len(key) <= self.metadata_key_chars:
                raise _reject((*loc, key), f"metadata keys must be 1 to {self.metadata_key_chars} characters")
            if key not in kept and (character := disguise.find(key)) is not None:
                raise _reject((*loc, key), disguise_message("metadata keys", character))
        try:
            size = len(orjson.dumps(value))
        except orjson.JSONEncodeError:
            raise _reject(loc, "metadata is too deeply nested or holds a number out of range") from None
        if size > self.metadata_bytes:
            raise _reject(loc, f"metadata may be at most {self.metadata_bytes} bytes serialized")
        return value

    def content(self, value: C, loc: Loc, *, empty: bool = False) -> C:
        """A string, or the parts of structured content: then every string of every part but its type counts,
        together (their shape, NUL and surrogates included, is checked where they are parsed). `empty`: a
        string may be "" (an in_progress reply starts so)."""
        if not isinstance(value, str):
            if not 1 <= sum(part.characters() for part in value) <= self.content_chars:
                raise _reject(loc, f"{PARTS_CONTENT_MESSAGE} 1 to {self.content_chars} characters")
            return value
        if not (0 if empty else 1) <= len(value) <= self.content_chars:
            raise _reject(loc, f"content must be 1 to {self.content_chars} characters")
        checked_text(value, loc)
        return value

    def content_growth(self, length: int, loc: Loc) -> None:
        """A delta that would make the content `length` characters long."""
        if length > self.content_chars:
            raise _reject(loc, f"content must be at most {self.content_chars} characters; a delta may not pass it")

    def initial_message_count(self, count: int, loc: Loc) -> None:
        if count > self.initial_messages:
            raise _reject(loc, f"at most {self.initial_messages} initial messages")

    def json_schemas(self) -> dict[str, dict[str, Any]]:
        """The OpenAPI components that the request models name (`Title`, `Content`, …): each rule above as JSON
        Schema. What JSON Schema cannot say is in the description and docs/api.md: text must not hold an
        unpaired surrogate escape; metadata serializes to at most `metadata_bytes` and nests at most
        MAX_JSON_DEPTH levels; a merge patch is checked by the metadata it results in."""
        no_nul = {"pattern": NO_NUL_PATTERN}
        value = {"$ref": _ref("JsonValue")}
        return {
            "Title": {
                "type": "string",
                "pattern": title_pattern(self.title_chars),
                "description": f"1 to {self.title_chars} characters once surrounding white space is trimmed (it "
                "is stored trimmed); no control characters (U+0000-U+001F, U+007F-U+009F) inside.",
            },
            "Content": {
                "type": "string",
                "maxLength": self.content_chars,
                **no_nul,
                "description": f'1 to {self.content_chars} characters, no NUL ("" only for a message created '
                "`in_progress`). The body limit counts bytes: long text of multi-byte characters can reach it "
                "first (413).",
            },
            "Metadata": {
                "type": "object",
                "maxProperties": self.metadata_keys,
                "propertyNames": {
                    "minLength": 1,
                    "maxLength": self.metadata_key_chars,
                    "pattern": METADATA_KEY_PATTERN,
                    "description": "No NUL, and none of the characters that disguise text (docs/api.md); nor a "
                    "tag character outside a flag emoji.",
                },
                "additionalProperties": value,
                "description": f"At most {self.metadata_keys} keys of 1 to {self.metadata_key_chars} characters; "
                f"at most {self.metadata_bytes} bytes as JSON, nested at most {MAX_JSON_DEPTH} levels.",
            },
            "MetadataPatch": {
                "type": "object",
                "propertyNames": no_nul,
                # A key set to null is removed, so only the keys that stay must be valid metadata keys.
                "patternProperties": {f"^{_KEY_CHARACTER}{{1,{self.metadata_key_chars}}}$": value},
                "additionalProperties": {"type": "null"},
                "description": "A JSON merge patch (RFC 7396) onto the stored metadata: a key set to null is "
                "removed, others are set. The metadata it results in must satisfy the limits of `Metadata` (422).",
            },
            "InitialMessages": {
                "type": "array",
                "items": {"$ref": _ref("MessageContent")},
                "maxItems": self.initial_messages,
                "description": "Created with the thread, in one transaction, numbered 1, 2, 3, …, as a chain: "
                "each the parent "
                "of the next, the last one current.",
            },
            "JsonValue": {
                "description": "Any JSON value without NUL in its strings; numbers between -2^63 and 2^64-1.",
                "type": ["null", "boolean", "number", "string", "array", "object"],
                "minimum": _NUMBER_RANGE[0],
                "maximum": _NUMBER_RANGE[1],
                **no_nul,
                "items": value,
                "propertyNames": no_nul,
                "additionalProperties": value,
            },
        }


def disguise_message(what: str, character: str) -> str:
    return (
        f"{what} must not contain bidirectional controls or invisible format characters"
        f" ({disguise.describe(character)} found)"
    )


PARTS_CONTENT_MESSAGE = "the strings of all parts but their type must hold, together,"
NUL_MESSAGE = "text must not contain the NUL character (U+0000)"
NO_NUL_PATTERN = "^[^\\u0000]*$"

# Unicode's control characters (category Cc); a title holds none.
CONTROL_CHARACTERS = frozenset(chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0)))
# What `str.strip()` removes: the characters for which `str.isspace()` is true.
WHITE_SPACE = frozenset(
    chr(c) for c in (*range(0x09, 0x0E), *range(0x1C, 0x21), 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B))
) | frozenset(chr(c) for c in (0x2028, 0x2029, 0x202F, 0x205F, 0x3000))


def _char_class(characters: frozenset[str], *, negated: bool = False) -> str:
    """A regular expression class of these (BMP) characters, runs of consecutive ones as ranges. \\uXXXX
    escapes read the same in ECMA-262 regular expressions (JSON Schema's) and in Python's."""
    runs: list[list[int]] = []
    for code in sorted(ord(ch) for ch in characters):
        if runs and code == runs[-1][1] + 1:
            runs[-1][1] = code
        else:
            runs.append([code, code])
    parts = (f"\\u{a:04x}" if a == b else f"\\u{a:04x}-\\u{b:04x}" for a, b in runs)
    return "[" + ("^" if negated else "") + "".join(parts) + "]"


def title_pattern(max_chars: int) -> str:
    """Limits.title as a regular expression: white space around, then 1 to max_chars characters that start
    and end with neither white space nor a control character and hold no control character."""
    space = _char_class(WHITE_SPACE)
    edge = _char_class(WHITE_SPACE | CONTROL_CHARACTERS | disguise.BMP_CHARACTERS, negated=True)
    inner = _char_class(CONTROL_CHARACTERS | disguise.BMP_CHARACTERS, negated=True)
    middle = f"(?:{inner}{{0,{max_chars - 2}}}{edge})?" if max_chars >= 2 else ""
    return f"^{space}*{edge}{middle}{space}*$"


_KEY_CHARACTER = _char_class(frozenset("\x00") | disguise.BMP_CHARACTERS, negated=True)
# A metadata key: no NUL, none of the characters that disguise text (disguise.py; the astral tag characters
# are said in words).
METADATA_KEY_PATTERN = f"^{_KEY_CHARACTER}*$"


def _ref(name: str) -> str:
    return f"#/components/schemas/{name}"


def _documented_by(name: str) -> WithJsonSchema:
    # allOf: pydantic resolves a bare $ref against its own definitions, where the Limits' schemas are not.
    return WithJsonSchema({"allOf": [{"$ref": _ref(name)}]})


SURROGATE_MESSAGE = "text must not contain unpaired UTF-16 surrogates (\\ud800-\\udfff escapes)"


def checked_text(value: str, loc: Loc) -> str:
    """Text PostgreSQL and UTF-8 can hold: no NUL, no unpaired surrogate."""
    if "\x00" in value:
        raise _reject(loc, NUL_MESSAGE)
    if not is_utf8(value):
        raise _reject(loc, SURROGATE_MESSAGE)
    return value


def is_utf8(text: str) -> bool:
    """False for a string holding a lone surrogate (JSON allows the escape; no database can store it)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


# Deeper than any real metadata, and well inside what the JSON serializers on the way to the database accept.
MAX_JSON_DEPTH = 64
# What orjson (the database's JSON serializer) can write as an integer. Floats are held to it too: a float
# beyond it is a whole number, and JSON Schema (the OpenAPI document) counts it as an integer, out of range.
_NUMBER_RANGE = (-(2**63), 2**64 - 1)


def plain_json(document: Any) -> Any:
    """A request's JSON value, if every backend can store it exactly as sent; else ValueError (422).

    PostgreSQL text and jsonb cannot hold NUL; NaN and Infinity (which Python's JSON parser accepts) are not
    JSON and would be stored as null; integers beyond 64 bits and very deep nesting cannot be serialized.
    Iterative, so a hostile depth costs no recursion.
    """
    pending: list[tuple[Any, int]] = [(document, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError(NUL_MESSAGE)
            if not is_utf8(item):
                raise ValueError(SURROGATE_MESSAGE)
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int):
            if not _NUMBER_RANGE[0] <= item <= _NUMBER_RANGE[1]:
                raise ValueError("integers must fit in 64 bits")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValueError("numbers must be finite (NaN and Infinity are not JSON)")
            if not _NUMBER_RANGE[0] <= item <= _NUMBER_RANGE[1]:
                raise ValueError("numbers must lie between -2^63 and 2^64-1")
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise ValueError(f"JSON may be nested at most {MAX_JSON_DEPTH} levels deep")
            children = [*item, *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return document


JsonObject = Annotated[dict[str, Any], AfterValidator(plain_json)]

# Request fields checked by Limits (in the service, where the settings are) and documented by its schemas.
Title = Annotated[StrictStr, _documented_by("Title")]
Content = Annotated[StrictStr, _documented_by("Content")]
Metadata = Annotated[JsonObject, _documented_by("Metadata")]
MetadataPatch = Annotated[JsonObject, _documented_by("MetadataPatch")]
InitialMessages = _documented_by("InitialMessages")  # annotates the list of a thread's first messages
