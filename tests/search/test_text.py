"""search/text.py, the one place text becomes terms for both databases (API.md "Search"): folding (case,
accents, `ß`, full-width forms, ligatures), where words split (`foo_bar`, `C++`, emoji), the overlapping pairs
of scripts written without spaces and their offsets, and the query language (`parse`): all words, phrases,
`-exclusions`, the prefix on the last word, and SQL / FTS syntax characters taken as plain words or separators.

Pure Python, no database: what these tests prove holds on SQLite and PostgreSQL alike, because both store and
intersect only the terms made here.
"""

from __future__ import annotations

import pytest

from threadstore.search.text import MAX_TERM, Group, Query, Term, parse, term_texts, terms


def words(text: str) -> list[str]:
    return term_texts(text)


def required(q: str) -> list[tuple[tuple[str, ...], bool]]:
    return [(group.terms, group.prefix) for group in parse(q).required]


def excluded(q: str) -> list[tuple[str, ...]]:
    return [group.terms for group in parse(q).excluded]


# --- folding ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("Café", "cafe"),
        ("CAFÉ", "café"),
        ("STRASSE", "Straße"),
        ("straße", "STRASSE"),
        ("\uff21\uff22\uff23\uff11\uff12\uff13", "abc123"),  # full-width forms
        ("ﬁle", "file"),  # the ligature ﬁ
        ("ﬀ", "ff"),
        ("İstanbul", "istanbul"),  # Turkish dotted capital I
        ("İSTANBUL", "Istanbul"),
        ("naïve", "NAIVE"),
        ("Ñandú", "nandu"),
        ("crème brûlée", "CREME BRULEE"),
        ("Ελληνικά", "ΕΛΛΗΝΙΚΑ"),  # Greek, its accent dropped
        ("Ёлка", "елка"),  # Cyrillic, its diaeresis dropped
        ("ｶﾀｶﾅ", "カタカナ"),  # half-width Katakana
        ("①", "1"),
        ("x²", "x2"),
    ],
)
def test_folding_makes_the_same_terms(one: str, other: str) -> None:
    assert words(one) == words(other)
    assert words(one), one


def test_folded_terms_are_lower_case_without_accents() -> None:
    assert words("Café CAFE café") == ["cafe", "cafe", "cafe"]
    assert words("Straße") == ["strasse"]
    assert words("ﬁne") == ["fine"]
    assert words("İstanbul") == ["istanbul"]


def test_a_term_keeps_its_place_in_the_original_text() -> None:
    text = "Ｃａｆé  au-lait ﬁn"
    found = terms(text)
    assert [t.text for t in found] == ["cafe", "au", "lait", "fin"]
    assert [text[t.start : t.end] for t in found] == ["Ｃａｆé", "au", "lait", "ﬁn"]
    assert not any(t.pair for t in found)


def test_a_decomposed_accent_stays_inside_its_word() -> None:
    decomposed = "cafe\u0301 ok"  # e + COMBINING ACUTE ACCENT: one word, not two
    found = terms(decomposed)
    assert [t.text for t in found] == ["cafe", "ok"]
    assert (found[0].start, found[0].end) == (0, 5)


# --- splitting --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("foo_bar", ["foo", "bar"]),
        ("C++", ["c"]),
        ("e-mail", ["e", "mail"]),
        ("it's", ["it", "s"]),
        ("user@example.com", ["user", "example", "com"]),
        ("x=1;y=2", ["x", "1", "y", "2"]),
        ("hi 🙂 there 👍🏽!", ["hi", "there"]),  # emoji, their modifiers and punctuation are no words
        ("🙂🎉🚀", []),
        ("3.14", ["3", "14"]),
        ("", []),
        ("   \t\n", []),
        ("한국어 단어", ["한국어", "단어"]),  # Hangul is written with spaces: words
        ("مرحبا بالعالم", ["مرحبا", "بالعالم"]),
    ],
)
def test_words_are_runs_of_letters_digits_and_marks(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_word_offsets() -> None:
    text = "foo_bar C++"
    assert [(t.text, t.start, t.end) for t in terms(text)] == [("foo", 0, 3), ("bar", 4, 7), ("c", 8, 9)]


def test_a_term_is_cut_at_max_term_characters() -> None:
    long_word = "a" * (MAX_TERM + 10)
    (term,) = terms(long_word)
    assert term.text == "a" * MAX_TERM
    assert (term.start, term.end) == (0, MAX_TERM + 10)  # the place is the whole word's
    # In the query alike: the long word finds the long word.
    assert parse(long_word).required == (Group(("a" * MAX_TERM,), prefix=True),)


# --- scripts without spaces ---------------------------------------------------------------------------------


def test_chinese_runs_are_overlapping_pairs_with_their_offsets() -> None:
    text = "我想去东京都"
    assert [(t.text, t.start, t.end, t.pair) for t in terms(text)] == [
        ("我想", 0, 2, True),
        ("想去", 1, 3, True),
        ("去东", 2, 4, True),
        ("东京", 3, 5, True),
        ("京都", 4, 6, True),
    ]


def test_japanese_kanji_and_kana_make_one_run() -> None:
    text = "東京都に行きたい"
    assert words(text) == ["東京", "京都", "都に", "に行", "行き", "きた", "たい"]
    assert words("コーヒー") == ["コー", "ーヒ", "ヒー"]  # the prolonged sound mark belongs to the run


def test_a_spaceless_run_between_words() -> None:
    text = "hello東京world 42"
    assert [(t.text, t.start, t.end, t.pair) for t in terms(text)] == [
        ("hello", 0, 5, False),
        ("東京", 5, 7, True),
        ("world", 7, 12, False),
        ("42", 13, 15, False),
    ]


def test_a_single_spaceless_character_is_no_term() -> None:
    assert words("東") == []
    assert words("東 京") == []  # two runs of one character each
    assert parse("東").empty


def test_thai_is_paired_with_its_vowel_marks_kept() -> None:
    assert words("ภาษาไทย") == ["ภา", "าษ", "ษา", "าไ", "ไท", "ทย"]


def test_punctuation_ends_a_spaceless_run() -> None:
    assert words("東京。京都") == ["東京", "京都"]


# --- parse: the query language ------------------------------------------------------------------------------


def test_all_words_are_required_and_the_last_is_a_prefix() -> None:
    assert required("Trip Lisbon") == [(("trip",), False), (("lisbon",), True)]
    assert parse("Trip Lisbon").excluded == ()


def test_a_phrase_is_one_group_of_terms_in_order() -> None:
    assert required('"red apple" pie') == [(("red", "apple"), False), (("pie",), True)]
    assert required('"apple red"') == [(("apple", "red"), False)]


def test_a_quoted_last_word_is_no_prefix() -> None:
    assert required('foo "bar"') == [(("foo",), False), (("bar",), False)]
    assert required('"foo bar"') == [(("foo", "bar"), False)]


def test_exclusions() -> None:
    assert required("alpha -beta") == [(("alpha",), False)]  # the last word is negated: no prefix at all
    assert excluded("alpha -beta") == [("beta",)]
    assert excluded('alpha -"beta gamma"') == [("beta", "gamma")]
    assert required('-"beta gamma" alpha') == [(("alpha",), True)]


def test_the_prefix_needs_two_characters() -> None:
    assert required("foo b") == [(("foo",), False), (("b",), False)]
    assert required("foo ba") == [(("foo",), False), (("ba",), True)]


def test_only_the_last_word_is_a_prefix() -> None:
    assert required("sea zebra") == [(("sea",), False), (("zebra",), True)]


def test_a_last_piece_of_several_words_is_a_phrase_with_a_prefix_end() -> None:
    assert required("foo_ba") == [(("foo", "ba"), True)]
    assert required("e-ma") == [(("e", "ma"), True)]


def test_a_spaceless_last_word_is_no_prefix() -> None:
    assert required("东京") == [(("东京",), False)]
    assert required("东京都") == [(("东京", "京都"), False)]
    assert required("hello 东京") == [(("hello",), False), (("东京",), False)]


def test_an_unclosed_quote_runs_to_the_end() -> None:
    assert required('foo "bar baz') == [(("foo",), False), (("bar", "baz"), False)]
    assert required('"') == []
    assert required('foo "') == [(("foo",), True)]


def test_quotes_pair_from_the_left() -> None:
    assert required('a"b c"d') == [(("a",), False), (("b", "c"), False), (("d",), False)]


def test_a_lone_dash_is_nothing() -> None:
    assert parse("-") == Query((), ())
    assert parse("- - -") == Query((), ())
    assert required("- foo") == [(("foo",), True)]  # a dash and a space: no exclusion
    assert parse("foo -").excluded == ()


@pytest.mark.parametrize(
    "q", ["", " ", "-", '""', '" "', "-foo", '-"foo bar"', "-a -b", "*", "()", "+-*/", "\u3002\u3001\uff01"]
)
def test_a_query_of_only_operators_or_exclusions_is_empty(q: str) -> None:
    assert parse(q).empty
    assert parse(q).required == ()


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("'", []),
        ('"', []),
        ("*", []),
        (":", []),
        ("(", []),
        ("\\", []),
        ("it's", [(("it", "s"), False)]),
        ("foo*", [(("foo",), True)]),
        ("a:b", [(("a", "b"), False)]),
        ("title:foo", [(("title", "foo"), True)]),
        ("(foo", [(("foo",), True)]),
        ("foo\\bar", [(("foo", "bar"), True)]),
        ("NEAR", [(("near",), True)]),
        ("AND", [(("and",), True)]),
        ("OR", [(("or",), True)]),
        ("foo OR bar", [(("foo",), False), (("or",), False), (("bar",), True)]),
        ("NEAR(foo bar)", [(("near", "foo"), False), (("bar",), True)]),
        ("'; DROP TABLE messages; --", [(("drop",), False), (("table",), False), (("messages",), True)]),
        ("foo & !bar | baz:*", [(("foo",), False), (("bar",), False), (("baz",), True)]),
        ("^foo", [(("foo",), True)]),
        ("{foo}", [(("foo",), True)]),
        ("col:foo*", [(("col", "foo"), True)]),
    ],
)
def test_sql_and_fts_syntax_is_plain_words_or_separators(q: str, expected: list[tuple[tuple[str, ...], bool]]) -> None:
    assert required(q) == expected


def test_query_words_fold_as_text_does() -> None:
    assert required("CAFÉ Straße") == [(("cafe",), False), (("strasse",), True)]
    assert required("\uff26\uff2f\uff2f") == [(("foo",), True)]


def test_a_repeated_group_is_asked_once() -> None:
    query = parse("foo foo bar -baz -baz")
    assert [g.terms for g in query.required] == [("foo",), ("bar",)]
    assert [g.terms for g in query.excluded] == [("baz",)]


def test_matches_term_marks_the_words_looked_for() -> None:
    query = parse('"red apple" pi')
    assert query.matches_term("red") and query.matches_term("apple")
    assert query.matches_term("pie") and query.matches_term("pi")  # the prefix
    assert not query.matches_term("app")
    assert not parse("foo -bar").matches_term("bar")  # an excluded word is never marked


def test_term_is_a_value() -> None:
    assert Term("x", 0, 1) == Term("x", 0, 1, pair=False)
