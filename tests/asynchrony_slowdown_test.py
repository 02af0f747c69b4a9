"""Tests of the slowdown parser and checker of localgrad.asynchrony."""

import pytest

from localgrad.asynchrony import parse_slowdown, validate_slowdown


def test_parses_the_command_line_form():
    assert parse_slowdown("3:1.11,5:2") == {3: 1.11, 5: 2.0}
    assert parse_slowdown(" 5 : 2 , 0:0.5") == {0: 0.5, 5: 2.0}
    assert parse_slowdown("") == {} and parse_slowdown("  ") == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ("3", "Bad slowdown '3'"),
        ("a:1.5", "Bad slowdown 'a:1.5'"),
        ("3:x", "Bad slowdown '3:x'"),
        ("3:1.5,", "Bad slowdown ''"),
        ("3:1,3:2", "Block 3 is slowed twice"),
        ("-1:2", "numbered from 0"),
        ("3:0", "finite number > 0"),
        ("3:-2", "finite number > 0"),
        ("3:inf", "finite number > 0"),
    ],
)
def test_bad_text_is_a_clear_value_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_slowdown(text)


def test_validate_checks_blocks_against_the_model():
    assert validate_slowdown({3: 1 / 0.9}, num_blocks=6) == {3: 1 / 0.9}
    assert validate_slowdown(None, num_blocks=2) == {}
    with pytest.raises(ValueError, match="has 4 blocks"):
        validate_slowdown(parse_slowdown("5:2"), num_blocks=4)
