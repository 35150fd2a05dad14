"""The canonical form of a tool definition: cosmetic re-serialization is never a change, wording is."""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from upstreams.pinning import MAX_DIFF_CHARS, canonical, definition_hash, definition_of, readable_diff

TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=12,
)
DEFINITIONS = st.fixed_dictionaries(
    {"name": st.from_regex(r"[a-z_]{1,12}", fullmatch=True), "description": TEXT,
     "inputSchema": st.dictionaries(TEXT, JSON, max_size=4)},
    optional={"title": TEXT, "outputSchema": st.dictionaries(TEXT, JSON, max_size=3),
              "annotations": st.dictionaries(TEXT, JSON, max_size=3)},
)


def _shuffled(value: Any, rng: random.Random) -> Any:
    """The same JSON value with every object's keys in another order."""
    if isinstance(value, dict):
        items = list(value.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(value, list):
        return [_shuffled(v, rng) for v in value]
    return value


@given(DEFINITIONS, st.integers(0, 2**32), st.sampled_from([None, 0, 1, 4, "\t"]), st.booleans())
def test_reserialization_is_never_a_change(definition, seed, indent, ascii_only):
    wire = json.dumps(_shuffled(definition, random.Random(seed)), indent=indent, ensure_ascii=ascii_only,
                      separators=(", ", " : ") if indent is None else None)
    assert definition_hash(json.loads(wire)) == definition_hash(definition)


@given(DEFINITIONS, TEXT.filter(bool))
def test_any_change_in_wording_is_a_change(definition, extra):
    reworded = {**definition, "description": definition["description"] + extra}
    assert definition_hash(reworded) != definition_hash(definition)
    if "title" in definition:
        retitled = {**definition, "title": definition["title"] + extra}
        assert definition_hash(retitled) != definition_hash(definition)


@given(DEFINITIONS, TEXT)
def test_a_schema_change_is_a_change(definition, prop):
    schema = {**definition["inputSchema"], "properties": {prop: {"type": "string"}}}
    if schema != definition["inputSchema"]:
        assert definition_hash({**definition, "inputSchema": schema}) != definition_hash(definition)


def test_only_the_pinned_fields_count():
    base = {"name": "echo", "description": "Echo.", "inputSchema": {"type": "object"}}
    noisy = {**base, "icons": [{"src": "x"}], "_meta": {"trace": 1}, "title": None, "execution": {}}
    assert definition_of(noisy) == base
    assert definition_hash(noisy) == definition_hash(base)
    assert canonical(base) == '{"description":"Echo.","inputSchema":{"type":"object"},"name":"echo"}'


def test_the_diff_is_readable_and_bounded():
    before = {"name": "t", "description": "Old words."}
    diff = readable_diff(before, {"name": "t", "description": "New words."})
    assert '-  "description": "Old words.",' in diff and '+  "description": "New words.",' in diff
    assert diff.startswith("--- approved/t\n+++ current/t")
    huge = readable_diff(None, {"name": "t", "description": "x" * 50_000})
    assert len(huge) <= MAX_DIFF_CHARS + 40 and huge.endswith("(diff truncated)")
