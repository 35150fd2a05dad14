"""TTL strings: what people type is read exactly, nonsense is refused with a clear error."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokens.exceptions import InvalidTokenRequest
from tokens.ttl import format_ttl, parse_grace, parse_ttl


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3600", timedelta(hours=1)),
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(days=14)),
        (" 7D ", timedelta(days=7)),
        (90, timedelta(seconds=90)),
    ],
)
def test_durations_are_read(text, expected):
    assert parse_ttl(text) == expected


def test_never_means_no_expiry():
    assert parse_ttl("never") is None
    assert parse_ttl("NEVER") is None


@pytest.mark.parametrize(
    "text", ["", "0", "-5", "1.5h", "7 days", "1y", "h", "1hh", True, -1, "99999999999", "５９m", "٣h"]
)
def test_nonsense_is_refused(text):
    with pytest.raises(InvalidTokenRequest):
        parse_ttl(text)


@given(st.integers(min_value=1, max_value=3 * 365 * 86400))
def test_format_then_parse_round_trips(seconds):
    delta = timedelta(seconds=seconds)
    assert parse_ttl(format_ttl(delta)) == delta


@given(st.text(max_size=20))
def test_any_text_either_parses_or_raises_invalid_request(text):
    try:
        result = parse_ttl(text)
    except InvalidTokenRequest:
        return
    assert result is None or result > timedelta(0)


@given(st.integers(min_value=1, max_value=999_999_999), st.sampled_from("smhdw"))
def test_huge_values_never_overflow(number, unit):
    with contextlib.suppress(InvalidTokenRequest):
        assert parse_ttl(f"{number}{unit}") > timedelta(0)


def test_grace_defaults_to_zero_and_refuses_never():
    assert parse_grace("0") == timedelta(0)
    assert parse_grace(None) == timedelta(0)
    assert parse_grace("10m") == timedelta(minutes=10)
    with pytest.raises(InvalidTokenRequest):
        parse_grace("never")


def test_errors_name_the_field_and_do_not_echo_huge_input():
    with pytest.raises(InvalidTokenRequest, match=r"^grace .-1m. is not seconds"):
        parse_grace("-1m")
    with pytest.raises(InvalidTokenRequest) as refused:
        parse_ttl("9" * 5000)
    assert len(str(refused.value)) < 120
