"""The query language's limits (depth, length, terms) and its warnings about lower-case
operators. Every limit is an error with a column, never a RecursionError or a slow compile."""

from __future__ import annotations

import time

import pytest

from monitor.match.lexer import query_warnings, render_caret
from monitor.match.nodes import And, Or, Term, to_string, walk
from monitor.match.query import MAX_DEPTH, MAX_LENGTH, MAX_TERMS, QuerySyntaxError, parse_query


@pytest.mark.parametrize(
    ("query", "column"),
    [
        ("NOT " * 980 + "x", 4 * MAX_DEPTH + 1),  # the case: 980 nested NOTs
        ("a " + "NOT " * (MAX_DEPTH + 1) + "x", 2 + 4 * MAX_DEPTH + 1),
        ("(" * 300 + "a" + ")" * 300, MAX_DEPTH + 1),
        ("title:" * 300 + "x", 6 * MAX_DEPTH + 1),
        (" NEAR/1 ".join(["x"] * 300), 9 * MAX_DEPTH + 3),  # a chain nests to the left
    ],
)
def test_nesting_deeper_than_the_limit_is_an_error_with_its_column(query: str, column: int) -> None:
    with pytest.raises(QuerySyntaxError) as raised:
        parse_query(query)
    assert raised.value.message == f"the query is nested deeper than {MAX_DEPTH} levels"
    assert raised.value.column == column


def test_nesting_up_to_the_limit_parses_and_prints_back() -> None:
    tree = parse_query("a " + "NOT " * (MAX_DEPTH - 1) + "(b)")
    assert parse_query(to_string(tree)) == tree
    assert len(walk(tree)) == MAX_DEPTH + 2  # And, the NOTs, a, b


def test_a_query_longer_than_the_limit_is_refused_at_once() -> None:
    # The case: 500,000 terms, 5.5 MB, took 25 s and 953 MB before.
    huge = " OR ".join(f"term{i}" for i in range(500_000))
    started = time.perf_counter()
    with pytest.raises(QuerySyntaxError) as raised:
        parse_query(huge)
    assert time.perf_counter() - started < 1.0
    assert raised.value.message == f"the query is longer than {MAX_LENGTH:,} characters"
    assert raised.value.column == MAX_LENGTH + 1
    assert len(str(raised.value)) < 400  # the caret line shows a window, not 5.5 MB


def test_exactly_the_length_limit_is_fine() -> None:
    query = "x" * (MAX_LENGTH - 2) + " y"
    assert parse_query(query) == And((Term("x" * (MAX_LENGTH - 2)), Term("y")))


def test_more_terms_than_the_limit_is_an_error_at_the_first_one_too_many() -> None:
    query = " OR ".join(["a"] * (MAX_TERMS + 5))
    with pytest.raises(QuerySyntaxError) as raised:
        parse_query(query)
    assert raised.value.message == f"more than {MAX_TERMS:,} terms"
    assert raised.value.column == 5 * MAX_TERMS + 1
    assert parse_query(" OR ".join(["a"] * MAX_TERMS)) == Or((Term("a"),) * MAX_TERMS)


def test_the_caret_of_a_long_query_points_at_the_problem_in_a_window() -> None:
    query = "a " * 200 + "BAD" + " b" * 200
    line, caret = render_caret(query, 401, indent="").split("\n")
    assert len(line) <= 122
    assert line.startswith("…") and line.endswith("…")
    assert line[caret.index("^") :].startswith("BAD")
    assert render_caret("a b", 3, indent="") == "a b\n  ^"  # a short query is shown whole


@pytest.mark.parametrize(
    ("query", "column", "operator"),
    [
        ("taiwan or japan", 8, "OR"),
        ("drills and blockade", 8, "AND"),
        ("taiwan AND not film", 12, "NOT"),
        ("not film", 1, "NOT"),
        ("(a OR b) Or (c)", 10, "OR"),
        ('"Taiwan Strait" and PLA', 17, "AND"),
    ],
)
def test_lower_case_operators_between_terms_are_warned_about(
    query: str, column: int, operator: str
) -> None:
    parse_query(query)  # it parses: a warning, not an error
    (warning,) = query_warnings(query)
    assert warning.column == column
    assert warning.message.endswith(f"did you mean {operator}?")
    assert warning.hint is not None and "in quotes" in warning.hint


@pytest.mark.parametrize(
    "query",
    [
        "taiwan OR japan",
        'taiwan "or" japan',  # quoted: the word, on purpose
        "oregon AND andes",  # words that only start like an operator
        "rock and",  # nothing after it: not between terms
        "or taiwan",  # nothing before it
        "title:and",
    ],
)
def test_no_warning_where_the_word_is_meant(query: str) -> None:
    assert query_warnings(query) == []
