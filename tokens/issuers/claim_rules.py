"""Claim rules of a trusted issuer: ``CLAIM=VALUE`` exact matches, all of which must hold.

A rule matches a string claim equal to VALUE, a boolean claim when VALUE is ``true``/``false``,
a number claim equal to VALUE written as a number, and a list claim (``groups``) that contains
VALUE. Nothing else matches: no patterns, no prefixes, so a rule cannot be widened by accident
(``repository=acme/app`` never admits ``acme/app-fork``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tokens.exceptions import InvalidTokenRequest

_CLAIM_NAME = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")


@dataclass(frozen=True)
class ClaimRule:
    claim: str
    value: str

    def __str__(self) -> str:
        return f"{self.claim}={self.value}"

    def matches(self, claims: Mapping[str, Any]) -> bool:
        if self.claim not in claims:
            return False
        return _value_matches(claims[self.claim], self.value)


def _value_matches(actual: Any, wanted: str) -> bool:
    if isinstance(actual, bool):
        return wanted == ("true" if actual else "false")
    if isinstance(actual, str):
        return actual == wanted
    if isinstance(actual, int | float):
        return str(actual) == wanted
    if isinstance(actual, list):
        scalars = (item for item in actual if isinstance(item, str | bool | int | float))
        return any(_value_matches(item, wanted) for item in scalars)
    return False


def parse_rule(text: str) -> ClaimRule:
    claim, sep, value = text.partition("=")
    claim = claim.strip()
    if not sep or not _CLAIM_NAME.match(claim) or not value:
        raise InvalidTokenRequest(f"A rule is CLAIM=VALUE, e.g. repository=acme/app; got {text!r}.")
    if len(value) > 500:
        raise InvalidTokenRequest("A rule's value is at most 500 characters.")
    return ClaimRule(claim=claim, value=value)


def rules_from_stored(stored: Sequence[Sequence[str]]) -> list[ClaimRule]:
    return [ClaimRule(claim=claim, value=value) for claim, value in stored]


def first_unmet(rules: Sequence[ClaimRule], claims: Mapping[str, Any]) -> ClaimRule | None:
    """The first rule ``claims`` do not satisfy, or None when all hold."""
    return next((rule for rule in rules if not rule.matches(claims)), None)
