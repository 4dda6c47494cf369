"""The search bench's corpus (issue 18): threads and messages of realistic text, generated in chunks that any
process can build alike (each chunk has its own seed), with each row's search terms computed by the app's own
functions (`threadstore.search.index.indexed`, then `tsvector_literal` for PostgreSQL).

Text: sentences of words drawn from a vocabulary with a Zipf-like distribution (a head of common English
words, then generated words), 1 to 3 sentences for a user's turn and 3 to 14 for an answer; 5 % of the messages are
Chinese/Japanese. Planted words, which the vocabulary never holds, have a controlled share of the messages: for
the heavy user exactly (the same number of their messages each run), for everyone else by chance with the same
probability, and in titles alike. `PLAN` lists them; `QUERIES` are the queries the bench sends, and `Stats`
counts what each one matches among the heavy user's texts, from the terms as stored.
"""

from __future__ import annotations

import csv
import hashlib
import io
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from threadstore.db.search_terms import IndexedTerms, sqlite_terms, tsvector_literal
from threadstore.search.index import indexed
from threadstore.search.text import Query, parse, term_texts

HEAVY = "searcher"
SEED = 18
T0 = datetime(2026, 11, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Shape:
    """One heavy user with `heavy_threads` x `heavy_messages`; `users` others with `threads` x `messages`."""

    heavy_threads: int = 1000
    heavy_messages: int = 100
    users: int = 9000
    threads: int = 10
    messages: int = 10

    @classmethod
    def scaled(cls, scale: float) -> Shape:
        return cls(heavy_threads=max(10, round(1000 * scale)), users=max(10, round(9000 * scale)))

    @property
    def heavy_total(self) -> int:
        return self.heavy_threads * self.heavy_messages

    @property
    def total_threads(self) -> int:
        return self.heavy_threads + self.users * self.threads

    @property
    def total_messages(self) -> int:
        return self.heavy_total + self.users * self.threads * self.messages


# ---------------------------------------------------------------- vocabulary

_HEAD_TEXT = (
    "the of and to a in is you that it he was for on are as with his they i at be this have from or one had by"
    " word but not what all were we when your can said there use an each which she do how their if will up other"
    " about out many then them these so some her would make like him into time has look two more write go see"
    " number no way could people my than first water been call who its now find long down day did get come made"
    " may part over new sound take only little work know place year live me back give most very after thing our"
    " just name good sentence man think say great where help through much before line right too mean old any"
    " same tell follow came want show also around form three small set put end does another well large must big"
    " even such because turn here why ask went men read need land different home us move try kind hand picture"
    " again change off play spell air away animal house point page letter mother answer found study still learn"
    " should world high every near add food between own below country plant last school father keep tree never"
    " start city earth eye light thought head under story saw left few while along might close something seem"
    " next hard open example begin life always those both paper together got group often run important until"
    " children side feet car mile night walk white sea began grow took river four carry state once book hear stop"
    " without second later miss idea enough eat face watch far really almost let above girl sometimes mountain"
    " cut young talk soon list song being leave family server database function error code file data user query"
    " table value test model request install version config library script output input update support report"
    " account project team meeting email message client service network system issue question problem result"
    " café naïve résumé straße über año niño façade crème déjà"
)
_HEAD = _HEAD_TEXT.split()

_ONSETS_TEXT = "b c d f g h j k l m n p r s t v w z br cr dr fl gr pl pr st tr ch sh th bl cl gl sl sp"
_VOWELS_TEXT = "a e i o u a e i o ai ea ou ie"
_ONSETS, _VOWELS = _ONSETS_TEXT.split(), _VOWELS_TEXT.split()
_CODAS = ["", "", "", "n", "r", "s", "l", "t", "m", "nd", "st", "ck"]

# The planted words: none is in the vocabulary, none starts like a vocabulary word's prefix query would.
RARE, MEDIUM, COMMON = "quokka", "lighthouse", "deployment"
PAIR = ("budget", "spreadsheet")
PHRASE = ("machine", "learning")
PREFIX = "syn"
PREFIX_WORDS = ("synapse", "syntax", "synergy", "synthesis", "synonym")
BIGRAM = "東京"
PLANTED = {RARE, MEDIUM, COMMON, *PAIR, *PHRASE, *PREFIX_WORDS}
PLANTED_STARTS = (RARE, MEDIUM, COMMON, *PAIR, *PHRASE, PREFIX)

# CJK filler: common characters of Chinese and Japanese, never those of the bigram.
_CJK = (
    "的一是不了人我在有他这中大来上国个到说们为子和你地出道也时年得就那要下以生会自着去之过家学对可她里后小么心多天而能"
    "好都然没日于起还发成事只作当想看文无开手十用主行方又如前所本见经头面公同三已老从动两长知民样现分将外但身些与高意进把"
    "法此实回二理美点月明其种声全工己话儿者向情部正名定女问力机给等几很业最间新什打便位因重被走电四第门相次山真程体海"
    "のにはをたがでてとしれさあるいうかもなこからすまよっつねりやそんどせけみおえきくわゆ"
    "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン"
)
assert not set(BIGRAM) & set(_CJK)


def _vocabulary() -> list[str]:
    rng = random.Random(SEED)
    head = list(dict.fromkeys(_HEAD))
    seen = set(head)
    words = list(head)
    while len(words) < 30_000:
        syllables = rng.choice((1, 2, 2, 2, 3))
        word = "".join(rng.choice(_ONSETS) + rng.choice(_VOWELS) for _ in range(syllables)) + rng.choice(_CODAS)
        if word in seen or len(word) < 3 or word.startswith(PLANTED_STARTS) or any(p.startswith(word) for p in PLANTED):
            continue
        seen.add(word)
        words.append(word)
    return words


VOCABULARY = _vocabulary()
assert not any(w.startswith(PLANTED_STARTS) for w in VOCABULARY)
_CUM: list[float] = []
_total = 0.0
for _rank in range(len(VOCABULARY)):
    _total += 1.0 / (_rank + 2.7)  # Zipf-Mandelbrot, exponent 1
    _CUM.append(_total)


# ---------------------------------------------------------------- what is planted, and how much


@dataclass(frozen=True)
class Plant:
    key: str
    words: tuple[str, ...]  # planted together, side by side (a phrase) or each anywhere (`apart`)
    share: float  # of the heavy user's messages: exactly; of anyone else's and of titles: by chance
    apart: bool = False


PLAN = (
    Plant("rare", (RARE,), 0.001),
    Plant("medium", (MEDIUM,), 0.01),
    Plant("common", (COMMON,), 0.10),
    # Both words in 0.5 % of the messages, each alone in 1.5 % more: the query's words are common, its answer not.
    Plant("pair", PAIR, 0.005, apart=True),
    Plant("pair_a", PAIR[:1], 0.015),
    Plant("pair_b", PAIR[1:], 0.015),
    # The phrase side by side in 0.5 %; both words apart in 0.2 % and each alone in 1 %: positions decide.
    Plant("phrase", PHRASE, 0.005),
    Plant("phrase_apart", PHRASE, 0.002, apart=True),
    Plant("phrase_a", PHRASE[:1], 0.01),
    Plant("phrase_b", PHRASE[1:], 0.01),
    *(Plant(f"prefix_{w}", (w,), 0.004) for w in PREFIX_WORDS),
    Plant("bigram", (BIGRAM,), 0.01),  # in Chinese/Japanese messages only
)
CJK_SHARE = 0.05  # messages in Chinese/Japanese (those with the bigram among them)


@dataclass(frozen=True)
class QueryCase:
    key: str
    label: str
    q: str
    sort: str = "relevance"


QUERIES = (
    QueryCase("rare", f"rare word ({RARE})", RARE),
    QueryCase("medium", f"medium word ({MEDIUM})", MEDIUM),
    QueryCase("common", f"common word ({COMMON}), sort=relevance", COMMON),
    QueryCase("common_recent", f"common word ({COMMON}), sort=recent", COMMON, "recent"),
    QueryCase("two_words", f"two words ({PAIR[0]} {PAIR[1]})", f"{PAIR[0]} {PAIR[1]}"),
    QueryCase("phrase", f'phrase ("{PHRASE[0]} {PHRASE[1]}")', f'"{PHRASE[0]} {PHRASE[1]}"'),
    QueryCase("prefix", f"3-letter prefix ({PREFIX}…: {len(PREFIX_WORDS)} words)", PREFIX),
    QueryCase("cjk", f"CJK bigram ({BIGRAM})", BIGRAM),
)


def _heavy_plan(n: int) -> dict[str, set[int]]:
    """Which of the heavy user's `n` messages (0 … n - 1 in thread order) get each plant: exact counts. The two
    words of `pair` go where neither is alone; the same for the phrase's words."""
    rng = random.Random(SEED + 1)
    cjk = set(rng.sample(range(n), round(CJK_SHARE * n)))
    latin = [i for i in range(n) if i not in cjk]
    plan: dict[str, set[int]] = {}
    for plant in PLAN:
        if plant.key == "bigram":
            plan[plant.key] = set(rng.sample(sorted(cjk), round(plant.share * n)))
            continue
        pool = latin
        if plant.key in ("pair_a", "pair_b", "phrase_a", "phrase_b", "phrase_apart"):
            group = "pair" if plant.key.startswith("pair") else "phrase"
            taken = set().union(*(plan[k] for k in plan if k.startswith(group)))
            pool = [i for i in latin if i not in taken]
        plan[plant.key] = set(rng.sample(pool, round(plant.share * n)))
    plan["cjk"] = cjk
    return plan


# ---------------------------------------------------------------- text


def _sentence(rng: random.Random, n: int, extra: list[str]) -> str:
    words = rng.choices(VOCABULARY, cum_weights=_CUM, k=n)
    for word in extra:
        words.insert(rng.randint(0, len(words)), word)
    if len(words) > 6 and rng.random() < 0.3:
        at = rng.randint(2, len(words) - 2)
        words[at] += ","
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice(".....?!")


def _cjk_sentence(rng: random.Random, n: int, extra: list[str]) -> str:
    chars = rng.choices(_CJK, k=n)
    for word in extra:
        chars.insert(rng.randint(0, len(chars)), word)
    return "".join(chars) + "。"


# Sentences are drawn from a pool whose terms the app's function computed once (a sentence ends with a
# separator, so a message's terms are its sentences' in order); a sentence that gets a planted word is made
# and split anew. Every 100th message is split whole as well and must give the same terms.
POOL = 200_000
_POOLS: dict[bool, list[tuple[str, tuple[str, ...]]]] = {}


def _pool(cjk: bool) -> list[tuple[str, tuple[str, ...]]]:
    if cjk not in _POOLS:
        rng = random.Random(f"{SEED}-pool-{cjk}")
        made = []
        for _ in range(POOL // 10 if cjk else POOL):
            text = _cjk_sentence(rng, rng.randint(8, 30), []) if cjk else _sentence(rng, rng.randint(5, 16), [])
            made.append((text, tuple(term_texts(text))))
        _POOLS[cjk] = made
    return _POOLS[cjk]


def message_text(rng: random.Random, role: str, plants: list[Plant], cjk: bool) -> tuple[str, tuple[str, ...]]:
    """A message's text with `plants` in it (a phrase side by side, apart words each in its own place), and
    its terms."""
    sentences = rng.randint(1, 3) if role == "user" else rng.randint(3, 14)
    placed: list[list[str]] = [[] for _ in range(sentences)]
    for plant in plants:
        if plant.apart:
            for word in plant.words:
                placed[rng.randrange(sentences)].append(word)
        else:
            placed[rng.randrange(sentences)].append(" ".join(plant.words))
    pool = _pool(cjk)
    texts: list[str] = []
    terms: list[str] = []
    for extra in placed:
        if extra:
            text = _cjk_sentence(rng, rng.randint(8, 30), extra) if cjk else _sentence(rng, rng.randint(5, 16), extra)
            texts.append(text)
            terms += term_texts(text)
        else:
            text, split = pool[rng.randrange(len(pool))]
            texts.append(text)
            terms += split
    return ("" if cjk else " ").join(texts), tuple(terms)


def title_text(rng: random.Random, plants: list[Plant], cjk: bool) -> str:
    if cjk:
        return _cjk_sentence(rng, rng.randint(4, 10), [" ".join(p.words) for p in plants])[:-1]
    return _sentence(rng, rng.randint(2, 6), [" ".join(p.words) for p in plants])[:-1]


def _drawn(rng: random.Random) -> tuple[list[Plant], bool]:
    """Plants and script of a text not the heavy user's message: each plant by chance at its share."""
    cjk = rng.random() < CJK_SHARE
    chosen = []
    for plant in PLAN:
        if (plant.key == "bigram") != cjk:
            continue
        share = plant.share / CJK_SHARE if plant.key == "bigram" else plant.share / (1 - CJK_SHARE)
        if rng.random() < share:
            chosen.append(plant)
    return chosen, cjk


# ---------------------------------------------------------------- rows


def thread_id(user: str, n: int) -> str:
    return "thr_" + hashlib.md5(f"search-{user}-{n}".encode()).hexdigest()[:22]


def message_id(thread: str, seq: int) -> str:
    """As bench/seeding.py and branching.py: md5 of (thread, seq)."""
    return "msg_" + hashlib.md5(f"{thread}-{seq}".encode()).hexdigest()[:22]


def user_of(ordinal: int, shape: Shape) -> tuple[str, int, int]:
    """The thread with global ordinal `ordinal`: (user, the user's thread number, messages in it)."""
    if ordinal < shape.heavy_threads:
        return HEAVY, ordinal, shape.heavy_messages
    k = ordinal - shape.heavy_threads
    return f"su_{k // shape.threads + 1}", k % shape.threads, shape.messages


@dataclass
class Stats:
    """What each query matches among the heavy user's texts: messages, titles and threads (with their
    updated_at, for the expected order of sort=recent)."""

    messages: Counter[str] = field(default_factory=Counter)
    titles: Counter[str] = field(default_factory=Counter)
    threads: dict[str, dict[str, datetime]] = field(default_factory=dict)  # query key -> thread id -> updated_at
    heavy_messages: int = 0
    words: int = 0  # terms of every message
    chars: int = 0

    def add(self, other: Stats) -> None:
        self.messages.update(other.messages)
        self.titles.update(other.titles)
        for key, found in other.threads.items():
            self.threads.setdefault(key, {}).update(found)
        self.heavy_messages += other.heavy_messages
        self.words += other.words
        self.chars += other.chars


_PARSED: list[tuple[str, Query]] = [(case.key, parse(case.q)) for case in QUERIES if case.sort == "relevance"]


def matches(terms: tuple[str, ...], query: Query) -> bool:
    """Whether one text's terms hold every group of `query` (API.md "Search": every word in the same text, a
    phrase's words side by side, the last word as a prefix when it may be one). The bench's own reading, to
    check the answers; the queries here have no exclusions."""
    for group in query.required:
        n, first = len(group.terms), group.terms[0]
        if n == 1 and group.prefix:
            if any(t.startswith(first) for t in terms):
                continue
            return False
        if first not in terms:
            return False
        for i in range(len(terms) - n + 1):
            head_ok = all(terms[i + k] == group.terms[k] for k in range(n - 1))
            last = terms[i + n - 1]
            if head_ok and (last.startswith(group.terms[-1]) if group.prefix else last == group.terms[-1]):
                break
        else:
            return False
    return True


@dataclass
class Chunk:
    """One chunk of the corpus, as rows for both databases."""

    number: int
    threads_csv: str  # PostgreSQL COPY … (FORMAT csv)
    branches_csv: str
    messages_csv: str
    sqlite_threads: list[tuple[object, ...]]
    sqlite_branches: list[tuple[object, ...]]
    sqlite_messages: list[tuple[object, ...]]
    stats: Stats
    messages: int


THREAD_COLUMNS = (
    "id", "user_id", "title", "metadata", "status", "created_at", "updated_at", "message_count", "last_message_at",
    "version", "current_message_id", "current_branch_id", "current_depth", "search_terms",
)  # fmt: skip
BRANCH_COLUMNS = ("id", "thread_id", "parent_branch_id", "fork_depth", "sibling_index", "level")
MESSAGE_COLUMNS = (
    "id", "thread_id", "seq", "role", "content", "metadata", "created_at", "branch_id", "depth", "parent_id",
    "sibling_index", "search_terms",
)  # fmt: skip


def sqlite_time(value: datetime) -> str:
    """As SQLAlchemy stores a naive UTC datetime in SQLite."""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def chunks(shape: Shape, per_chunk: int = 20_000) -> list[tuple[int, int]]:
    """(first thread ordinal, end) of each chunk, about `per_chunk` messages each."""
    out, start, size = [], 0, 0
    for ordinal in range(shape.total_threads):
        size += user_of(ordinal, shape)[2]
        if size >= per_chunk:
            out.append((start, ordinal + 1))
            start, size = ordinal + 1, 0
    if start < shape.total_threads:
        out.append((start, shape.total_threads))
    return out


_PLANS: dict[int, dict[str, set[int]]] = {}


def heavy_plan(shape: Shape) -> dict[str, set[int]]:
    """The plan of `_heavy_plan`, made once per process."""
    n = shape.heavy_total
    if n not in _PLANS:
        _PLANS[n] = _heavy_plan(n)
    return _PLANS[n]


def build_chunk(args: tuple[Shape, int, int, int]) -> Chunk:
    """The rows of threads [start, end) (global ordinals). Thread ordinal k's trunk is branch k + 1."""
    shape, number, start, end = args
    rng = random.Random(f"{SEED}-{number}")
    plan = heavy_plan(shape)
    by_key = {p.key: p for p in PLAN}
    stats = Stats()
    t_out, b_out, m_out = io.StringIO(), io.StringIO(), io.StringIO()
    t_csv, b_csv, m_csv = csv.writer(t_out), csv.writer(b_out), csv.writer(m_out)
    sq_threads: list[tuple[object, ...]] = []
    sq_branches: list[tuple[object, ...]] = []
    sq_messages: list[tuple[object, ...]] = []
    count = 0
    for ordinal in range(start, end):
        user, n, size = user_of(ordinal, shape)
        heavy = user == HEAVY
        tid = thread_id(user, n)
        branch = ordinal + 1
        created = T0 - timedelta(minutes=7 * ordinal)
        title_plants, title_cjk = _drawn(rng)
        title = title_text(rng, title_plants, title_cjk)
        title_terms = indexed(user, title)
        assert title_terms is not None
        updated = created + timedelta(seconds=30 * size)
        last_id = message_id(tid, size)
        if heavy:
            for key, query in _PARSED:
                if matches(title_terms.terms, query):
                    stats.titles[key] += 1
                    stats.threads.setdefault(key, {})[tid] = updated
        parent = None
        for seq in range(1, size + 1):
            role = "user" if seq % 2 else "assistant"
            if heavy:
                h = n * shape.heavy_messages + seq - 1
                plants = [by_key[k] for k in by_key if h in plan.get(k, ())]
                cjk = h in plan["cjk"]
            else:
                plants, cjk = _drawn(rng)
            content, split = message_text(rng, role, plants, cjk)
            terms = IndexedTerms(user, split)
            if count % 100 == 0 and indexed(user, content) != terms:
                raise AssertionError(f"the pooled terms of a message differ from the app's: {content!r}")
            mid = message_id(tid, seq)
            stamp = created + timedelta(seconds=30 * seq)
            m_csv.writerow((mid, tid, seq, role, content, "{}", stamp.isoformat(), branch, seq, parent, 1,
                            tsvector_literal(terms)))  # fmt: skip
            sq_messages.append((mid, tid, seq, role, content, "{}", sqlite_time(stamp), branch, seq, parent, 1,
                                sqlite_terms(terms)))  # fmt: skip
            stats.words += len(terms.terms)
            stats.chars += len(content)
            if heavy:
                stats.heavy_messages += 1
                for key, query in _PARSED:
                    if matches(terms.terms, query):
                        stats.messages[key] += 1
                        stats.threads.setdefault(key, {})[tid] = updated
            parent = mid
            count += 1
        t_csv.writerow((tid, user, title, "{}", "active", created.isoformat(), updated.isoformat(), size,
                        updated.isoformat(), size + 1, last_id, branch, size,
                        tsvector_literal(title_terms)))  # fmt: skip
        sq_threads.append((tid, user, title, "{}", "active", sqlite_time(created), sqlite_time(updated), size,
                           sqlite_time(updated), size + 1, last_id, branch, size,
                           sqlite_terms(title_terms)))  # fmt: skip
        b_csv.writerow((branch, tid, None, 0, 1, 0))
        sq_branches.append((branch, tid, None, 0, 1, 0))
    return Chunk(number, t_out.getvalue(), b_out.getvalue(), m_out.getvalue(), sq_threads, sq_branches,
                 sq_messages, stats, count)  # fmt: skip


def sentence_pools() -> None:
    """Makes both sentence pools (in a parent process, so that forked workers share them)."""
    _pool(False)
    _pool(True)
