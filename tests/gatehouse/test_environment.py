"""StrictEnv: every malformed value is an ImproperlyConfigured naming its variable."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.environment import StrictEnv


def env_with(**values: str) -> StrictEnv:
    env = StrictEnv()
    env.ENVIRON = values
    return env


@pytest.mark.parametrize(
    ("read", "value", "message"),
    [
        (lambda e: e.int("V", default=1), "abc", "V must be an integer (got 'abc')."),
        (lambda e: e.positive_int("V", default=1), "0", "V must be a positive integer (got 0)."),
        (lambda e: e.positive_int("V", default=1), "-5", "V must be a positive integer (got -5)."),
        (lambda e: e.float("V", default=1.0), "one", "V must be a number (got 'one')."),
        (lambda e: e.positive_float("V", default=1.0), "-1", "V must be a positive number (got -1.0)."),
        (lambda e: e.bool("V", default=False), "maybe", "V must be a boolean (true/false) (got 'maybe')."),
        (lambda e: e.rate("V", default="1/m"), "fast", "V must look like 600/m"),
        (lambda e: e.rate("V", default="1/m"), "10 per minute", "V must look like 600/m"),
        (lambda e: e.choice("V", default="A", choices=["A", "B"]), "C", "V must be one of A, B (got 'C')."),
    ],
)
def test_malformed_value_names_the_variable(read, value, message):
    with pytest.raises(ImproperlyConfigured) as excinfo:
        read(env_with(V=value))
    assert message in str(excinfo.value)


def test_sensitive_variable_value_is_not_echoed():
    with pytest.raises(ImproperlyConfigured) as excinfo:
        env_with(GATEHOUSE_SECRET_TIMEOUT="hunter2").int("GATEHOUSE_SECRET_TIMEOUT", default=1)
    assert str(excinfo.value) == "GATEHOUSE_SECRET_TIMEOUT must be an integer."


@pytest.mark.parametrize(("value", "expected"), [
    ("true", True), ("YES", True), ("1", True), ("on", True),
    ("false", False), ("0", False), ("Off", False), ("no", False),
])
def test_booleans_accept_the_usual_spellings(value, expected):
    assert env_with(V=value).bool("V", default=not expected) is expected


def test_empty_or_blank_means_unset():
    env = env_with(A="", B="   ")
    assert env.int("A", default=7) == 7
    assert env.bool("B", default=True) is True


def test_required_variable_without_default_is_named():
    with pytest.raises(ImproperlyConfigured, match="Set the NEEDED environment variable"):
        env_with().str("NEEDED")


def test_lists_are_trimmed():
    assert env_with(V=" a.example , b.example,,").list("V", default=[]) == ["a.example", "b.example"]


def test_dollar_values_are_literal_not_references():
    assert env_with(V="$HOME-not-expanded").str("V", default="") == "$HOME-not-expanded"


def test_choice_is_case_insensitive_and_canonical():
    assert env_with(V="eddsa").choice("V", default="ES256", choices=["EdDSA", "ES256"]) == "EdDSA"


def test_rates_accept_drf_periods():
    for rate in ["600/m", "10/s", "1000/hour", "5/day"]:
        assert env_with(V=rate).rate("V", default="1/m") == rate
