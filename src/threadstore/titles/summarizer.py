"""A deterministic, model-free title for a conversation, made from its first user message.

It is the fallback when no LLM is configured or the LLM fails, so it must never raise and never return an
empty string. It knows nothing about topics: it drops what frames a request rather than stating it
(greetings, politeness, "can you help me", "Kannst du mir helfen", "Pouvez-vous m'aider à", "¿Puedes
ayudarme a") and keeps the first clause that is left. Only the head of the message is read, so the cost
stays small even for 100k-character pastes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass

from threadstore.titles.cleaning import has_alnum, truncate_title
from threadstore.titles.framing import (
    ASSISTANT_NAMES,
    CAPITAL_I,
    CONTENTLESS,
    ENGLISH,
    GREETINGS,
    LANGUAGES,
    LONGEST,
    POLITENESS,
    Language,
    Phrases,
    words,
)

DEFAULT_TITLE = "New conversation"

# The topic of a chat message is stated near its start; the rest only costs time.
_SCAN_CHARS = 4000
_MAX_CLAUSES = 40
_MAX_TOKENS = 64
_MAX_WORD_CHARS = 100
# A label or list item this short names a thing ("Python:", "eggs") rather than saying something about it.
_SHORT = 3


def summarize(text: str, *, max_words: int = 8, max_chars: int = 80) -> str:
    """A short title naming the topic of `text`; "New conversation" when it holds no letter or digit."""
    if max_words < 1 or max_chars < 1:
        raise ValueError("max_words and max_chars must be at least 1")
    if not has_alnum(text):
        return DEFAULT_TITLE
    head = text[:_SCAN_CHARS]
    if not has_alnum(head):  # a long run of symbols first: the words start later
        start = next(index for index, ch in enumerate(text) if ch.isalnum())
        head = text[start : start + _SCAN_CHARS]
    prose, code = _split_code(head)
    clauses = list(_clauses(prose))
    for tokens, stops, is_prose in _candidates(clauses, code, head):
        if any(map(has_alnum, tokens)):  # "==" alone would not make a title
            return _finish(tokens, stops, is_prose, max_words, max_chars)
    return DEFAULT_TITLE  # not reached: the last candidate holds the head's first letter or digit


_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# Periods of common abbreviations would otherwise end a clause ("Dr. Smith"); after "e.g." comes an example.
_ABBREVIATION = re.compile(r"\b(etc|vs|mr|mrs|ms|dr|st|approx|incl|bzw|usw)\.", re.IGNORECASE)
_ELABORATION = re.compile(r"\b(?:e\.g|i\.e|z\.b)\.,?", re.IGNORECASE)
# Clause ends: sentence punctuation, "." / ":" only before whitespace (keeps "Node.js", "10:30", "3.5"), and a
# comma that starts a follow-up question.
_CLAUSE_SPLIT = re.compile(
    r"((?:[?!;\u2026\u3002\uff1f\uff01\uff1b\uff1a\uff0c]|[.:](?=[\s.]|$)"
    rf"|,(?=[ \t]+[¿¡]?(?i:{'|'.join(sorted(set().union(*(la.follow_ups for la in LANGUAGES))))})\b))+)"
)
_DECORATION = re.compile(r"^\s*(?:#{1,6}\s+|>\s*)+")  # Markdown headings and quotes
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+")
_CODE_KEYWORDS = words("def class import function const let var public private protected return package using fn func")
_IMPORT_WORD = re.compile(r"[\w.,*]+")
_CODE_CHARS = frozenset("{}[]();=<>|\\$`")


@dataclass(frozen=True)
class _Clause:
    text: str
    delimiter: str
    line: int
    listed: bool  # its line is a list item
    opens_line: bool


def _split_code(head: str) -> tuple[list[str], list[str]]:
    """Prose lines (blank where code was, so that line numbers still tell lines apart) and code lines."""
    prose: list[str] = []
    code: list[str] = []
    for index, part in enumerate(head.split("```")):
        if index % 2:  # inside a fence; its first line is a language tag when it is one word or none
            tag, newline, body = part.partition("\n")
            lines = body.split("\n") if newline and len(tag.split()) <= 1 else part.split("\n")
            code.extend(lines)
            prose.extend("" for _ in lines)
            continue
        for line in _prepare(part).split("\n"):
            is_code = _looks_like_code(line)
            prose.append("" if is_code else line)
            code.extend([line] if is_code else [])
    return prose, code


def _prepare(text: str) -> str:
    text = _drop_symbols(_ELABORATION.sub("; ", _ABBREVIATION.sub(r"\1", _URL.sub(" ", text))))
    cased = [ch for ch in text if ch.isupper() or ch.islower()]
    # Shouted messages would make shouted titles; lowercasing loses acronyms, which is the lesser evil.
    if len(cased) >= 8 and sum(ch.isupper() for ch in cased) >= 0.8 * len(cased):
        text = text.lower()
    return text


def _drop_symbols(text: str) -> str:
    """Emoji, pictographs and control/format characters become spaces; newlines are kept as clause breaks."""
    return "".join(" " if ch != "\n" and _is_blank(ch) else ch for ch in text)


def _is_blank(ch: str) -> bool:
    code = ord(ch)
    is_emoji_part = 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF or code == 0x20E3
    return ch.isspace() or is_emoji_part or unicodedata.category(ch) in ("So", "Cc", "Cf", "Cs", "Co", "Cn")


def _looks_like_code(line: str) -> bool:
    stripped = line.strip()
    if line.startswith(("    ", "\t")) or stripped.endswith(("{", ";")) or stripped.startswith("}"):
        return True
    if stripped.startswith(("$ ", ">>> ", "//", "/*", "<?", "</", "#include", 'File "', "Traceback (most recent call")):
        return True
    if stripped[:1] == "<" and stripped[-1:] == ">":
        return True
    parts = stripped.split() or [""]
    if parts[0] in _CODE_KEYWORDS and any(ch in stripped for ch in "(){}=:;"):
        return True
    if parts[0] in ("import", "from") and "import" in parts and all(map(_IMPORT_WORD.fullmatch, parts)):
        return True
    return sum(ch in _CODE_CHARS for ch in stripped) > 0.15 * len(stripped)


def _clauses(prose: list[str]) -> Iterator[_Clause]:
    count = 0
    for number, raw_line in enumerate(prose):
        line = _DECORATION.sub("", raw_line)
        item = _LIST_MARKER.sub("", line)
        parts = _CLAUSE_SPLIT.split(item)
        for index in range(0, len(parts), 2):
            if has_alnum(parts[index]):
                delimiter = parts[index + 1] if index + 1 < len(parts) else ""
                yield _Clause(parts[index], delimiter, number, item != line, index == 0)
                count += 1
                if count >= _MAX_CLAUSES:
                    return


_EDGE_CHARS = "\"'`*~\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a\u2018\u2019\u201a\u00bf\u00a1"
_SENTENCE_PUNCT = ",.;:!?"
# Operators mean something in a title ("0.1 + 0.2 == 0.3", "x^2 * y"); dashes and a lone "!" do not.
_OPERATOR = re.compile(r"[&+/*^%=<>]+|[!<>=]=+")
_BRACKETS = (("(", ")"), ("[", "]"), ("{", "}"))


def _tokens(text: str) -> list[str]:
    return [token for token in map(_clean_token, text.split()) if token][:_MAX_TOKENS]


def _clean_token(word: str) -> str:
    # No title keeps a word this long whole, and the cap bounds the bracket balancing below.
    word = word[:_MAX_WORD_CHARS].replace("\u2019", "'")
    if _OPERATOR.fullmatch(word):
        return word
    core = word.rstrip(_SENTENCE_PUNCT)
    keeps_comma = "," in word[len(core) :]  # "Hi Claude, ..." marks a name, "eggs, milk" a list
    previous = None
    while core != previous:
        previous = core
        core = core.strip(_EDGE_CHARS)
        for opening, closing in _BRACKETS:
            if core.startswith(opening) and core.count(opening) > core.count(closing):
                core = core[1:]
            if core.endswith(closing) and core.count(closing) > core.count(opening):
                core = core[:-1]
        core = core.rstrip(_SENTENCE_PUNCT)
    if not has_alnum(core):
        return ""
    return core + "," if keeps_comma else core


def _norm(token: str) -> str:
    return token.casefold().rstrip(_SENTENCE_PUNCT)


def _phrase_at(norms: list[str], start: int, table: Phrases, *, before: bool = False) -> int:
    """Length of the longest phrase of `table` starting at `start` (or ending there), 0 if none does."""
    for length in range(min(LONGEST, start if before else len(norms) - start), 0, -1):
        if tuple(norms[start - length : start] if before else norms[start : start + length]) in table:
            return length
    return 0


_Candidate = tuple[list[str], frozenset[str], bool]


def _candidates(clauses: list[_Clause], code: list[str], head: str) -> Iterator[_Candidate]:
    """Titles from best to last resort; the first non-empty one is used."""
    yield _topic_of(clauses)
    # Code only: its first line names it, as typed. Without its "#", "//", "$" or ">>>", a comment reads as prose.
    for line in code:
        parts = _drop_symbols(line).split()
        while parts and not has_alnum(parts[0]):
            parts.pop(0)
        if parts:
            yield [part[:_MAX_WORD_CHARS] for part in parts[:_MAX_TOKENS]], frozenset(), False
            break
    # Only greetings and framing ("Hi!", "Can you help?"): the message's own first words beat nothing.
    yield next((_tokens(clause.text) for clause in clauses), []), ENGLISH.stops, True
    yield _tokens(_drop_symbols(head)), ENGLISH.stops, True


def _topic_of(clauses: list[_Clause]) -> _Candidate:
    """Tokens of the first clause that says something beyond greetings and request framing."""
    for index, clause in enumerate(clauses):
        tokens, language = _topic_tokens(clause.text)
        if not tokens:
            continue
        stops = language.stops | ENGLISH.stops
        following = clauses[index + 1] if index + 1 < len(clauses) else None
        # A short label names the area, what follows it the question: "Python: how do I read a CSV file?" ->
        # "Python: read a CSV file"; "Shopping list:" over a list -> "Shopping list: eggs, milk, flour".
        if len(tokens) <= _SHORT and clause.delimiter.startswith((":", "\uff1a")) and following is not None:
            label = [*tokens[:-1], tokens[-1] + ":"]
            if following.line == clause.line and (rest := _topic_tokens(following.text)[0]):
                return [*label, *rest], stops, True
            if following.line != clause.line and following.listed and (items := _short_items(clauses[index + 1 :])):
                return [*label, *items], stops, True
        if clause.listed and clause.opens_line and len(tokens) <= _SHORT:
            return _short_items(clauses[index:]) or tokens, stops, True
        return tokens, stops, True
    return [], frozenset(), True


def _short_items(clauses: list[_Clause]) -> list[str]:
    """ "eggs, milk, flour" from consecutive short list items; [] when the first item is long."""
    joined: list[str] = []
    for clause in (clause for clause in clauses if clause.opens_line):
        item = _topic_tokens(clause.text)[0] or _tokens(clause.text)
        if not clause.listed or len(item) > _SHORT or len(joined) >= _MAX_TOKENS:
            break
        if joined:
            joined[-1] += ","
        joined.extend([*item[:-1], item[-1].rstrip(",")])
    return joined


def _topic_tokens(text: str) -> tuple[list[str], Language]:
    """The clause reduced to its topic ([] when it is only framing), and the language its framing was in."""
    tokens, language, greeted = _strip_lead(_tokens(text))
    had_article = len(tokens) > 1 and _norm(tokens[0]) in language.articles
    if had_article:
        tokens = tokens[1:]
    elif tokens and tokens[0][:2].casefold() == "l'" and has_alnum(tokens[0][2:]):  # French and Italian elision
        tokens = [tokens[0][2:], *tokens[1:]]
    tokens = _trim_tail(tokens, language, had_article)
    stops = language.stops | ENGLISH.stops
    if all(_norm(token) in CONTENTLESS or _norm(token) in stops or not has_alnum(token) for token in tokens):
        return [], language
    if greeted and len(tokens) <= 2:  # "Hi Claude!" is an address, not a topic
        return [], language
    return tokens, language


def _strip_lead(tokens: list[str]) -> tuple[list[str], Language, bool]:
    """Drops greetings, politeness, framing and "produce" verbs from the front, in any order."""
    norms = [_norm(token) for token in tokens]
    start, language, greeted = 0, ENGLISH, False
    while start < len(tokens):
        length = _phrase_at(norms, start, GREETINGS)
        if length and norms[start + length : start + length + 1] != ["world"]:  # "Hello world in Rust"
            start, greeted = start + length, True
            # "Hi Claude, ..." / "Hey chatgpt, ...": the name belongs to the greeting.
            name = tokens[start] if start + 1 < len(tokens) else ""
            if name.endswith(",") and (name[:1].isupper() or norms[start] in ASSISTANT_NAMES):
                start += 1
            continue
        length = _phrase_at(norms, start, POLITENESS)
        for candidate in LANGUAGES:  # the longest match decides the language; English wins a tie
            framing = _phrase_at(norms, start, candidate.framing)
            if framing > length:
                length, language = framing, candidate
        if not length:
            break
        start += length
    return tokens[start:], language, greeted


def _trim_tail(tokens: list[str], language: Language, had_article: bool) -> list[str]:
    """Drops trailing politeness and dangling stop words, but never the last remaining token."""
    norms = [_norm(token) for token in tokens]
    # German ends an infinitive clause with "zu <verb>": "(einen) Brief zu schreiben". The "zu" goes, and so
    # does a "produce" verb after an article, as "write a letter" loses "write".
    if language.final_verbs and len(tokens) > 2 and norms[-2] == "zu":
        tokens, norms = [*tokens[:-2], tokens[-1]], [*norms[:-2], norms[-1]]
    if had_article and len(tokens) > 1 and norms[-1] in language.final_verbs:
        tokens, norms = tokens[:-1], norms[:-1]
    end, stops = len(tokens), language.stops | ENGLISH.stops
    while end > 1:
        politeness = _phrase_at(norms, end, POLITENESS, before=True)
        if 0 < politeness < end:
            end -= politeness
        elif norms[end - 1] in stops:
            end -= 1
        else:
            break
    trimmed = tokens[:end]
    if trimmed:
        trimmed[-1] = trimmed[-1].rstrip(_SENTENCE_PUNCT) or trimmed[-1]
    return trimmed


def _finish(tokens: list[str], stops: frozenset[str], is_prose: bool, max_words: int, max_chars: int) -> str:
    cased = [CAPITAL_I.get(token.casefold(), token) for token in tokens] if is_prose else tokens
    title = truncate_title(" ".join(cased), max_words, max_chars).split()
    # A cut can leave "with", "to" or a lone operator dangling.
    while len(title) > 1 and (_norm(title[-1]) in stops or not has_alnum(title[-1])):
        title.pop()
    text = " ".join(title).rstrip(_SENTENCE_PUNCT + "-\u2013\u2014")
    if not has_alnum(text):  # a limit of a few characters cut away everything but punctuation
        text = "".join(ch for ch in " ".join(cased) if ch.isalnum())[:max_chars]
    first = text.split(" ", 1)[0]
    # Code and words such as "iPhone" or "eBay" keep their case.
    # "ß" would become "SS", a character more than the limit allowed for.
    if is_prose and first[:1].isalpha() and first == first.lower() and all(c.isalpha() or c in "-'" for c in first):
        text = text[0].upper() + text[1:] if len(text[0].upper()) == 1 else text
    return text or DEFAULT_TITLE
