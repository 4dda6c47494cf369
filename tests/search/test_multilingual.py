"""One multilingual corpus (English, German, French, Spanish, Turkish, Chinese, Japanese, code snippets, emoji,
full-width forms, a long document) stored on SQLite and on PostgreSQL: for each query of the table below, the
set of thread titles found is the one written here, and the same on both databases (issue 18: "the same
query finds the same threads on both").

The corpus is written once per database through the API (a module fixture), then every query runs on both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import make_settings, new_user, running_api
from tests.harness.databases import fresh_database
from tests.pg_server import PgServer
from tests.search.helpers import make_thread, search

DATABASES = ("sqlite", "postgresql")

# Long, but within what a PostgreSQL tsvector keeps of positions (16,383 words; at most 256 positions of a word):
# past that a phrase is found on SQLite only (docs/api.md "Search"; tests/search/test_search.py pins it).
LONG_DOCUMENT = " ".join(f"word{i % 997} filler{i // 256}" for i in range(8_000)) + " the final chapter"

CORPUS: list[tuple[str, list[str]]] = [
    ("Trip to Lisbon", ["We fly to Lisbon in March with the kids.", "Book a table at a café near the river."]),
    ("Berlin Straßenbahn", ["Die Straße ist lang und die Straßenbahn fährt schnell.", "Wir trinken Kaffee im Café."]),
    ("Recette française", ["La crème brûlée est un dessert français.", "Il faut un œuf et du sucre."]),
    ("Viaje a España", ["¿Dónde está la estación de tren?", "El niño comió paella en Valencia."]),
    ("Española", ["La niña y el niño juegan en el jardín.", "Mañana vamos a la playa."]),
    ("Türkçe", ["İstanbul ve Ankara", "\u0131l\u0131k su"]),
    ("东京旅行", ["我想去东京都旅游。", "北京和上海也很好。"]),
    ("日本語の勉強", ["東京都に行きたいです。", "コーヒーを飲みましょう。"]),
    ("Mixed 东京 English", ["Tokyo is 东京 in Chinese and 東京 in Japanese."]),
    ("Python snippet", ["def foo_bar(x):\n    return x * 2", "Use `foo_bar` from utils."]),
    ("C++ templates", ["template<typename T> T max(T a, T b);", "I write C++ and C# daily."]),
    ("JavaScript", ["const fooBar = () => null;", "e-mail: user@example.com"]),
    ("Shell script", ["grep -r 'TODO' src/ | wc -l", "echo $HOME && ls -la"]),
    ("SQL query", ["SELECT * FROM users WHERE name = 'O''Brien';", "DROP TABLE students; --"]),
    ("Emoji chat", ["Party time 🎉🎉 let's go 🚀", "Thumbs up 👍🏽 from me"]),
    ("Café society", ["The CAFE on the corner serves naïve coffee.", "Résumé review tomorrow."]),
    ("Straße names", ["STRASSE is the uppercase of Straße.", "Masse and Maße differ."]),
    ("Red apple", ["a red apple a day"]),
    ("Colours", ["apple red is a colour", "red, green and blue"]),
    ("Full-width", ["\uff21\uff22\uff23\uff11\uff12\uff13 and ﬁle ligatures"]),
    ("Long document", [LONG_DOCUMENT]),
]

LISBON, BERLIN, RECETTE, VIAJE, ESPANOLA, TURKCE = (
    "Trip to Lisbon",
    "Berlin Straßenbahn",
    "Recette française",
    "Viaje a España",
    "Española",
    "Türkçe",
)
TOKYO_ZH, TOKYO_JA, MIXED = "东京旅行", "日本語の勉強", "Mixed 东京 English"
PYTHON, CPP, JS, SHELL, SQL, EMOJI = (
    "Python snippet",
    "C++ templates",
    "JavaScript",
    "Shell script",
    "SQL query",
    "Emoji chat",
)
CAFE, STRASSE, RED, COLOURS, WIDE, LONG = (
    "Café society",
    "Straße names",
    "Red apple",
    "Colours",
    "Full-width",
    "Long document",
)

EXPECTED: dict[str, set[str]] = {
    # English, case
    "lisbon": {LISBON},
    "LISBON MARCH": {LISBON},
    '"the"': {LISBON, CAFE, STRASSE, LONG},
    "table": {LISBON, SQL},
    # accents, both ways
    "cafe": {LISBON, BERLIN, CAFE},
    '"CAFÉ"': {LISBON, BERLIN, CAFE},
    "naive coffee": {CAFE},
    "resume": {CAFE},
    "creme brulee": {RECETTE},
    "francais": {RECETTE},
    "estacion": {VIAJE},
    "DONDE ESTA": {VIAJE},
    "nino": {VIAJE, ESPANOLA},
    "espana": {VIAJE},
    "manana playa": {ESPANOLA},
    # ß
    "strasse": {BERLIN, STRASSE},
    '"straße"': {BERLIN, STRASSE},
    "STRASSENBAHN": {BERLIN},
    '"masse"': {STRASSE},
    "kaffee": {BERLIN},
    # Turkish
    "istanbul": {TURKCE},
    "İSTANBUL": {TURKCE},
    "turkce": {TURKCE},
    "\u0131l\u0131k": {TURKCE},  # dotless i (U+0131): a letter of its own
    "ankara -istanbul": set(),
    # Chinese and Japanese: runs of 2 characters or more
    "东京": {TOKYO_ZH, MIXED},
    "東京": {TOKYO_JA, MIXED},
    "京都": {TOKYO_ZH, TOKYO_JA},
    "东京都": {TOKYO_ZH},
    "北京": {TOKYO_ZH},
    "上海 北京": {TOKYO_ZH},
    '"上海 北京"': set(),
    "京": set(),
    "東京都に": {TOKYO_JA},
    "コーヒー": {TOKYO_JA},
    "勉強": {TOKYO_JA},
    "tokyo 东京": {MIXED},
    # code
    "foo_bar": {PYTHON},
    "foobar": {JS},
    '"C++"': {CPP},
    "C# daily": {CPP},
    "typename": {CPP},
    "max": {CPP},
    "return x": {PYTHON},
    "grep TODO": {SHELL},
    '"ls -la"': {SHELL},
    "ls -la": set(),  # unquoted, `-la` is an exclusion, and the thread holds `la`
    '"e mail"': {JS},
    "example.com": {JS},
    "o'brien": {SQL},
    "drop table": {SQL},
    # emoji
    "🎉": set(),
    "party 🎉 time": {EMOJI},
    "thumbs up": {EMOJI},
    # full-width forms and ligatures
    "abc123": {WIDE},
    "file ligatures": {WIDE},
    "\uff26\uff29\uff2c\uff25": {WIDE},
    # phrases and exclusions
    '"red apple"': {RED},
    '"apple red"': {COLOURS},
    "red apple": {RED, COLOURS},
    "apple -colour": {RED},
    "apple -day": {COLOURS},
    'apple -"red apple"': {COLOURS},
    "-apple": set(),
    # prefixes: only the last word
    "lisb": {LISBON},
    "lis march": set(),
    "coffe": {CAFE},
    '"coffe"': set(),
    "straßen": {BERLIN},
    # a long document: its end as well as its start
    '"final chapter"': {LONG},
    "word996 filler": {LONG},
    '"filler0 word5 filler0"': {LONG},
}


@pytest.fixture(scope="module")
async def found_titles(
    pg_server: PgServer | None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[dict[str, dict[str, set[str]]]]:
    """{database: {query: titles found}}, the corpus written to a fresh database of each kind."""
    found: dict[str, dict[str, set[str]]] = {}
    for kind in DATABASES:
        tmp: Path = tmp_path_factory.mktemp(f"multilingual-{kind}")
        async with (
            fresh_database(kind, pg_server, tmp) as backend,
            running_api(backend, make_settings(backend, tmp)) as api,
        ):
            user = new_user()
            for title, texts in CORPUS:
                await make_thread(api, user, *texts, title=title)
            found[kind] = {}
            for q in EXPECTED:
                page = await search(api, user, q, limit=50)
                assert page["has_more"] is False
                found[kind][q] = {result["thread"]["title"] for result in page["data"]}
    yield found


@pytest.mark.parametrize("q", list(EXPECTED))
def test_each_query_finds_the_expected_threads_on_both_databases(
    found_titles: dict[str, dict[str, set[str]]], q: str
) -> None:
    assert {kind: found_titles[kind][q] for kind in DATABASES} == {kind: EXPECTED[q] for kind in DATABASES}


def test_both_databases_find_the_same_threads(found_titles: dict[str, dict[str, set[str]]]) -> None:
    differ = {
        q: {kind: sorted(found_titles[kind][q]) for kind in DATABASES}
        for q in EXPECTED
        if len({frozenset(found_titles[kind][q]) for kind in DATABASES}) > 1
    }
    assert differ == {}


def test_the_table_is_long_enough() -> None:
    assert len(EXPECTED) >= 40
    assert sum(1 for titles in EXPECTED.values() if titles) >= 30
