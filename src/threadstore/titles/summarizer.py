"""A deterministic, model-free title for a conversation, made from its first user message.

It is the fallback when no LLM is configured or the LLM fails, so it must never raise and never return an
empty string. It names the topic rather than echoing the request ("Can you help me plan a three day trip to
Lisbon?" -> "Three-day Lisbon trip"). The work is token-based rather than done with large regexes, and only
the head of the message is examined, so the cost stays linear and small even for 100k-character pastes.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from threadstore.titles.cleaning import has_alnum, truncate_title

DEFAULT_TITLE = "New conversation"

# The topic of a chat message is stated near its start; the rest only costs time.
_SCAN_CHARS = 4000
_MAX_CLAUSES = 40
_MAX_TOKENS = 64
_MAX_WORD_CHARS = 100


def summarize(text: str, *, max_words: int = 8, max_chars: int = 80) -> str:
    """A short title naming the topic of `text`; "New conversation" when it holds no letter or digit."""
    if max_words < 1 or max_chars < 1:
        raise ValueError("max_words and max_chars must be at least 1")
    if not has_alnum(text):
        return DEFAULT_TITLE
    prose, code = _split_code_fences(text)
    prose = _prepare(prose[:_SCAN_CHARS])
    tokens = _topic_of(prose) or _first_words(prose, code, text)
    return _finish(tokens, max_words, max_chars)


# --- vocabulary -------------------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _expand(*patterns: str) -> frozenset[tuple[str, ...]]:
    """Phrase tables written compactly: "{can|could} you {please|}" stands for four phrases."""
    phrases: set[tuple[str, ...]] = set()
    for pattern in patterns:
        slots = [
            item[1:-1].split("|") if item.startswith("{") else [item]
            for item in re.findall(r"\{[^}]*\}|[^\s{}]+", pattern)
        ]
        for choice in itertools.product(*slots):
            words = tuple(" ".join(choice).split())
            if words:
                phrases.add(words)
    return frozenset(phrases)


_GREETINGS = _expand(
    "{hi|hello|hey|hiya|heya|howdy|yo|greetings|hallo|hola|bonjour|ciao|salut|olá|ola|hej|moin|servus|"
    "buongiorno|привет|здравствуйте|здравствуй|cześć|merhaba|namaste} "
    "{there|all|everyone|everybody|guys|folks|team|friend|}",
    "good {morning|afternoon|evening|day}",
    "dear {assistant|chatgpt|claude|gpt|bot}",
    "buenos {días|dias}",
)
_LEAD_INS = _expand(
    # Politeness and discourse fillers.
    "{please|pls|plz|kindly|ok|okay|so|also|and|but|well|um|uh|hmm|anyway|btw|sorry|thanks|oh|alright|"
    "basically|actually|honestly}",
    "thank you",
    "by the way",
    "excuse me",
    "sorry to bother you",
    "one more thing",
    "{quick|short|simple|dumb|stupid|random|general|a|one|another|} question {about|regarding|on|re|}",
    # Requests addressed to the assistant.
    "{can|could|would|will|cant|can't|won't} {you|u|ya} {please|kindly|}",
    "{can|could|would} {you|u} {please|} help {me|us} {to|with|}",
    "{would you|are you|will you} {be able to|able to}",
    "would you mind",
    "{is it|would it be} possible {to|for you to}",
    "{i was|i am|i'm|im} wondering {if|whether} {you could|you can|you would|}",
    "i wonder {if|whether} {you could|you can|}",
    "help {me|us} {to|with|}",
    "help with",
    "assist me with",
    "{do|did} you {know|think} {about|how to|if|whether|}",
    # The user's wishes and needs.
    "{i|we} {want|need|wanna} {you to|to|}",
    "{i'd|id|we'd|i would|we would} like {you to|to|}",
    "{i|we} {need|want|would like} {some|} help {with|on|}",
    "need {some|} help {with|on|}",
    "{know|learn} {more|} about",
    "know how to",
    "{i'm|im|i am} {looking for|trying to|hoping to|planning to|wondering about|curious about|interested in}",
    # "I'm working on a Django app" -> "Django app": the gerund only sets the scene.
    "{i'm|im|i am|we're|we are} "
    "{working|building|writing|developing|learning|studying|planning|preparing|using|designing|creating|"
    "making|reading|running|doing|getting|having|looking|thinking|trying|starting|setting} "
    "{on|with|about|for|at|into|up|of|}",
    "{i|we} {have|got} {a|an|some}",
    "{i've|ive|we've} got {a|an|some}",
    # Questions whose wording is not the topic.
    "how {do|can|should|would|could|might} {i|we|you|one}",
    "how to",
    "{what's|whats|what is|what are} the {best|easiest|fastest|simplest|quickest|right|correct|proper} {way|ways} to",
    "{best|easiest|simplest} way to",
    "is there {a|any} way to",
    "{what|who} {is|are|was|were}",
    "{what's|whats|who's|whos|what're}",
    "{tell|teach|show|give} me {about|}",
    "explain {to me|}",
    "describe",
    "define",
    "{let's|lets|let us}",
    "{here|below} {is|are}",
    "{here's|heres|this is}",
)
# Verbs that only say "produce" ("plan a ...", "write me a ...") before the noun phrase that is the topic.
_FILLER_VERBS = _expand(
    "{plan|write|make|create|build|draft|generate|design|compose|suggest|recommend|prepare|outline|"
    "brainstorm|craft|produce|find|give|get|provide|list|propose}",
    "come up with",
    "put together",
    "whip up",
    "set up",
)
_DETERMINERS = frozenset({"a", "an", "the", "some", "me", "us"})
_ARTICLES = frozenset({"a", "an", "the", "some", "any"})
_NUMBER_WORDS = _words("""
    one two three four five six seven eight nine ten eleven twelve fifteen twenty thirty forty fifty hundred
    half multi
""")
_UNITS = _words("second minute hour day night week month year page word step person star mile bedroom point course")
_TRIP_NOUNS = _words("trip vacation holiday getaway visit itinerary honeymoon journey")
_TRIP_MODIFIERS = _words("road family business school ski solo camping fishing work field girls boys")
_TRAILING_STOP = _words("""
    a an the and or but nor with without for to of in on at by from about as into onto over than that which
    who whom whose if is are was were my your our their his her me us please pls plz thanks thank so like
    vs versus via per when while where how what i we you just some any very really also & + /
""")
# A clause made only of these carries no topic ("Hi there!", "Quick question:", "Thanks in advance").
_BOILERPLATE = _TRAILING_STOP | _words("""
    hi hello hey hiya yo there thank question questions quick help helps problem issue need needs have has
    had something anything assistance urgent ok okay well um uh hmm again everyone all guys folks team good
    morning afternoon evening sir madam it this these those can could would should will do does did yes no
    sure great cool awesome nice hope hoping doing are am you're today advance much lot lots appreciate
    appreciated here here's below following snippet get got getting one more thing it's its now wondering
    claude chatgpt gpt assistant bot friend dear simple short stupid dumb random let know tell show give
    code error output
""")
_ASSISTANT_NAMES = _words("claude chatgpt gpt assistant bot ai there all everyone")
_CAPITAL_I = {"i": "I", "i'm": "I'm", "i've": "I've", "i'd": "I'd", "i'll": "I'll"}

_LONGEST_PHRASE = max(len(p) for p in _GREETINGS | _LEAD_INS | _FILLER_VERBS)


# --- text preparation -------------------------------------------------------------------------------------

_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# Periods of common abbreviations would otherwise end a clause ("Dr. Smith").
_ABBREVIATION = re.compile(r"\b(etc|vs|mr|mrs|ms|dr|st|approx|incl)\.", re.IGNORECASE)
# What follows "e.g." / "i.e." elaborates; the topic was before it.
_ELABORATION = re.compile(r"\b(?:e\.g|i\.e)\.,?", re.IGNORECASE)
# Clause ends: sentence punctuation, "." / ":" only before whitespace (keeps "Node.js", "10:30", "3.5"), and a
# comma that starts a follow-up question ("I'm going to Paris, what should I see?").
_CLAUSE_SPLIT = re.compile(
    r"((?:[?!;\u2026\u3002\uff1f\uff01\uff1b\uff1a]|[.:](?=[\s.]|$)"
    r"|,(?=[ \t]+(?i:what|how|where|which|why|when|any|can|could|should|would|do|does|is|are)\b))+)"
)
_LIST_MARKER = re.compile(r"^\s*(?:#{1,6}\s+|>\s*|[-*+•]\s+|\d{1,3}[.)]\s+)+")
_CODE_KEYWORDS = _words("def class import function const let var public private protected return package using fn func")
_IMPORT_WORD = re.compile(r"[\w.,*]+")
_CODE_CHARS = frozenset("{}[]();=<>|\\$`")


def _split_code_fences(text: str) -> tuple[str, str]:
    """Prose outside ``` fences, and the code inside them (without the language tag line)."""
    parts = text.split("```")
    code_parts = []
    for part in parts[1::2]:
        head, newline, body = part.partition("\n")
        code_parts.append(body if newline and len(head.split()) <= 1 else part)
    return "\n".join(parts[0::2]), "\n".join(code_parts)


def _prepare(text: str) -> str:
    text = _ELABORATION.sub("; ", _ABBREVIATION.sub(r"\1", _URL.sub(" ", text)))
    text = _drop_symbols(text)
    cased = [ch for ch in text if ch.isupper() or ch.islower()]
    # Shouted messages would make shouted titles; lowercasing loses acronyms, which is the lesser evil.
    if len(cased) >= 8 and sum(ch.isupper() for ch in cased) >= 0.8 * len(cased):
        text = text.lower()
    return text


def _drop_symbols(text: str) -> str:
    """Emoji, pictographs and control/format characters become spaces; newlines are kept as clause breaks."""
    out = []
    for ch in text:
        if ch == "\n":
            out.append(ch)
        elif ch.isspace():
            out.append(" ")
        else:
            category = unicodedata.category(ch)
            code = ord(ch)
            is_symbol = category in ("So", "Sk", "Cc", "Cf", "Cs", "Co", "Cn")
            is_emoji_part = 0xFE00 <= code <= 0xFE0F or 0x1F3FB <= code <= 0x1F3FF or code == 0x20E3
            out.append(" " if is_symbol or is_emoji_part else ch)
    return "".join(out)


def _looks_like_code(line: str) -> bool:
    if line.startswith(("    ", "\t")):
        return True
    stripped = line.strip()
    if stripped.startswith(("$ ", ">>> ", "//", "/*", "<?", "</", "#include", 'File "', "Traceback (most recent call")):
        return True
    if stripped.endswith(("{", ";")) or stripped.startswith("}"):
        return True
    if stripped.startswith("<") and stripped.endswith(">"):
        return True
    words = stripped.split()
    first = words[0] if words else ""
    if first in _CODE_KEYWORDS and any(ch in stripped for ch in "(){}=:;"):
        return True
    if first in ("import", "from") and "import" in words and all(_IMPORT_WORD.fullmatch(w) for w in words):
        return True
    return sum(ch in _CODE_CHARS for ch in stripped) > 0.15 * len(stripped)


@dataclass(frozen=True)
class _Clause:
    text: str
    delimiter: str
    line: int


def _clauses(prose: str) -> Iterator[_Clause]:
    count = 0
    for line_number, raw_line in enumerate(prose.split("\n")):
        if not raw_line.strip() or _looks_like_code(raw_line):
            continue
        parts = _CLAUSE_SPLIT.split(_LIST_MARKER.sub("", raw_line))
        for index in range(0, len(parts), 2):
            delimiter = parts[index + 1] if index + 1 < len(parts) else ""
            if has_alnum(parts[index]):
                yield _Clause(parts[index], delimiter, line_number)
                count += 1
                if count >= _MAX_CLAUSES:
                    return


# --- tokens -----------------------------------------------------------------------------------------------

_EDGE_CHARS = "\"'`*~\u201c\u201d\u201e\u201f\u00ab\u00bb\u2039\u203a\u2018\u2019\u201a\u00bf\u00a1"
_SENTENCE_PUNCT = ",.;:!?"
_KEPT_SYMBOLS = frozenset({"&", "+", "/"})
_BRACKETS = (("(", ")"), ("[", "]"), ("{", "}"))


def _tokens(text: str) -> list[str]:
    tokens = []
    for word in text.split():
        token = _clean_token(word)
        if token:
            tokens.append(token)
            if len(tokens) >= _MAX_TOKENS:
                break
    return tokens


def _clean_token(word: str) -> str:
    # No title keeps a word this long whole, and the cap bounds the bracket balancing below.
    word = word[:_MAX_WORD_CHARS].replace("\u2019", "'")
    core = word.rstrip(_SENTENCE_PUNCT)
    keeps_comma = "," in word[len(core) :]
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
    if not has_alnum(core) and core not in _KEPT_SYMBOLS:
        return ""
    return core + "," if keeps_comma else core


def _norm(token: str) -> str:
    return token.lower().rstrip(_SENTENCE_PUNCT)


def _phrase_at(norms: list[str], start: int, table: frozenset[tuple[str, ...]]) -> int:
    """Length of the longest phrase of `table` starting at `start`, 0 if none does."""
    for length in range(min(_LONGEST_PHRASE, len(norms) - start), 0, -1):
        if tuple(norms[start : start + length]) in table:
            return length
    return 0


def _is_number(norm: str) -> bool:
    return norm.isdigit() or norm in _NUMBER_WORDS


# --- finding the topic ------------------------------------------------------------------------------------


def _topic_of(prose: str) -> list[str]:
    """Tokens of the first clause that says something beyond greetings and request boilerplate."""
    clauses = list(_clauses(prose))
    for index, clause in enumerate(clauses):
        tokens = _topic_tokens(clause.text)
        if not tokens:
            continue
        following = clauses[index + 1] if index + 1 < len(clauses) else None
        # "Python: how do I reverse a list?" -> "Python: reverse a list"; a one- or two-word label alone
        # ("TypeError") names the area but not the question.
        is_label = len(tokens) <= 2 and clause.delimiter.startswith((":", "\uff1a", ","))
        if is_label and following is not None and following.line == clause.line:
            rest = _topic_tokens(following.text)
            if rest:
                return [*tokens[:-1], tokens[-1].rstrip(",") + ":", *rest]
        return tokens
    return []


def _topic_tokens(clause: str) -> list[str]:
    """The clause reduced to its topic, or [] when it is only boilerplate."""
    tokens, greeted = _strip_lead_ins(_tokens(clause))
    if len(tokens) > 1 and _norm(tokens[0]) in _ARTICLES:
        tokens = tokens[1:]
    tokens = _trim_trailing(tokens)
    if not tokens or all(_norm(token) in _BOILERPLATE for token in tokens):
        return []
    if greeted and len(tokens) <= 2:  # "Hi Claude!" is an address, not a topic
        return []
    return _front_destination(_hyphenate_durations(tokens))


def _strip_lead_ins(tokens: list[str]) -> tuple[list[str], bool]:
    norms = [_norm(token) for token in tokens]
    start = 0
    greeted = False
    while start < len(tokens):
        length = _phrase_at(norms, start, _GREETINGS)
        if length and norms[start + length : start + length + 1] != ["world"]:  # "Hello world in Rust"
            greeted = True
            start += length
            start += _name_after_greeting(tokens, norms, start)
            continue
        length = _phrase_at(norms, start, _LEAD_INS)
        if length:
            start += length
            continue
        length = _filler_verb_at(norms, start)
        if length:
            start += length
            continue
        break
    return tokens[start:], greeted


def _name_after_greeting(tokens: list[str], norms: list[str], start: int) -> int:
    """1 when a name follows the greeting ("Hi Claude, ..."), so that it is skipped too."""
    if start + 1 >= len(tokens) or not tokens[start].endswith(","):
        return 0
    return 1 if tokens[start][:1].isupper() or norms[start] in _ASSISTANT_NAMES else 0


def _filler_verb_at(norms: list[str], start: int) -> int:
    """How many tokens "write me a" / "plan a" / "list 5" spans, 0 unless a noun phrase follows."""
    length = _phrase_at(norms, start, _FILLER_VERBS)
    if not length:
        return 0
    end = start + length
    while end < len(norms) and norms[end] in _DETERMINERS:
        end += 1
    if end == start + length and not (end < len(norms) and _is_number(norms[end])):
        return 0  # "build failing on CI": the verb is the topic, not filler
    if not any(norm not in _TRAILING_STOP for norm in norms[end:]):
        return 0
    return end - start


def _hyphenate_durations(tokens: list[str]) -> list[str]:
    """Joins a number to its unit before a noun: three day trip -> three-day trip, 5 year old -> 5-year-old."""
    out: list[str] = []
    index = 0
    while index < len(tokens):
        token = tokens[index]
        unit = tokens[index + 1] if index + 1 < len(tokens) else ""
        after = tokens[index + 2] if index + 2 < len(tokens) else ""
        if (
            _is_number(_norm(token))
            and token == token.rstrip(_SENTENCE_PUNCT)
            and _norm(unit) in _UNITS
            and unit == unit.rstrip(_SENTENCE_PUNCT)
            and after.isalpha()
            and _norm(after) not in _TRAILING_STOP
        ):
            if _norm(after) == "old":
                out.append(f"{token}-{unit}-{after}")
                index += 3
            else:
                out.append(f"{token}-{unit}")
                index += 2
            continue
        out.append(token)
        index += 1
    return out


def _front_destination(tokens: list[str]) -> list[str]:
    """Puts the place before the trip noun: three-day trip to Lisbon in March -> three-day Lisbon trip in March."""
    norms = [_norm(token) for token in tokens]
    for index in range(len(tokens) - 2):
        if norms[index] not in _TRIP_NOUNS or norms[index + 1] != "to" or tokens[index].endswith(","):
            continue
        end = index + 2
        while end < len(tokens) and tokens[end][:1].isupper() and norms[end] not in _TRAILING_STOP:
            end += 1
            if tokens[end - 1].endswith(","):
                break
        if end == index + 2:
            return tokens
        place = [token.rstrip(",") for token in tokens[index + 2 : end]]
        insert_at = index - 1 if index > 0 and norms[index - 1] in _TRIP_MODIFIERS else index
        return [*tokens[:insert_at], *place, *tokens[insert_at : index + 1], *tokens[end:]]
    return tokens


def _trim_trailing(tokens: list[str]) -> list[str]:
    """Drops dangling stop words ("... with kids and") but never the last remaining token."""
    end = len(tokens)
    while end > 1 and _norm(tokens[end - 1]) in _TRAILING_STOP:
        end -= 1
    trimmed = tokens[:end]
    if trimmed:
        trimmed[-1] = trimmed[-1].rstrip(_SENTENCE_PUNCT) or trimmed[-1]
    return trimmed


def _first_words(prose: str, code: str, text: str) -> list[str]:
    """The last resort: the message's own first words, from the first source that has any."""
    for source in (prose, code, text):
        tokens = _tokens(_drop_symbols(_URL.sub(" ", source[:_SCAN_CHARS])))
        if tokens:
            return tokens
    # Only URLs, or the first letter comes after a long run of symbols: start at that letter.
    first_alnum = next((index for index, ch in enumerate(text) if ch.isalnum()), 0)
    return _tokens(_drop_symbols(text[first_alnum : first_alnum + _SCAN_CHARS]))


# --- final form -------------------------------------------------------------------------------------------


def _finish(tokens: Iterable[str], max_words: int, max_chars: int) -> str:
    words = [_CAPITAL_I.get(token.lower(), token) for token in tokens]
    title = truncate_title(" ".join(_trim_trailing(words)), max_words, max_chars)
    title = " ".join(_trim_trailing(title.split())).rstrip(_SENTENCE_PUNCT + "-\u2013\u2014")
    if not has_alnum(title):  # a limit of a few characters cut away everything but punctuation
        title = "".join(ch for ch in " ".join(words) if ch.isalnum())[:max_chars]
    return _capitalize_first(title) or DEFAULT_TITLE


def _capitalize_first(title: str) -> str:
    first = title.split(" ", 1)[0]
    # "iPhone", "eBay" and code identifiers keep their case.
    if (
        first[:1].islower()
        and not any(ch.isupper() for ch in first[1:])
        and all(ch.isalpha() or ch in "-'" for ch in first)
    ):
        return title[0].upper() + title[1:]
    return title
