"""Token scope: servers and per-server tool allowlists, from the API mapping or the CLI flags."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tokens.exceptions import InvalidTokenRequest
from tokens.scope import TokenScope

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_-", min_size=1, max_size=12)
mappings = st.dictionaries(
    names, st.one_of(st.none(), st.lists(names, min_size=1, max_size=5)), min_size=1, max_size=5
)


@given(mappings)
def test_mapping_round_trips(mapping):
    scope = TokenScope.from_mapping(mapping)
    assert TokenScope.from_mapping(scope.to_mapping()) == scope


@given(mappings, names, names)
def test_a_tool_is_allowed_exactly_when_the_mapping_says_so(mapping, server, tool):
    scope = TokenScope.from_mapping(mapping)
    expected = server in mapping and (mapping[server] is None or tool in mapping[server])
    assert scope.allows_tool(server, tool) is expected


@given(mappings)
def test_a_scope_is_within_itself_and_exceeds_nothing(mapping):
    scope = TokenScope.from_mapping(mapping)
    assert scope.is_within(scope)
    assert scope.exceeding(scope) == []


def test_all_tools_exceeds_a_tool_ceiling():
    ceiling = TokenScope.from_mapping({"demo": ["echo"]})
    assert not TokenScope.from_mapping({"demo": None}).is_within(ceiling)
    assert TokenScope.from_mapping({"demo": ["echo"]}).is_within(TokenScope.from_mapping({"demo": None}))


@pytest.mark.parametrize("mapping", [{}, {"demo": []}, {"demo": [""]}, {"demo": "echo"}, {"": None}, []])
def test_empty_or_malformed_scopes_are_refused(mapping):
    with pytest.raises(InvalidTokenRequest):
        TokenScope.from_mapping(mapping)


def test_cli_tools_apply_to_every_named_server():
    scope = TokenScope.from_selection(servers=["demo", "files"], tools=["echo", "add"])
    assert scope.to_mapping() == {"demo": ["add", "echo"], "files": ["add", "echo"]}


def test_cli_pinned_tool_restricts_only_its_server():
    scope = TokenScope.from_selection(servers=["demo", "files"], tools=["demo:echo"])
    assert scope.to_mapping() == {"demo": ["echo"], "files": None}


def test_cli_mixes_shared_and_pinned_tools():
    scope = TokenScope.from_selection(servers=["demo", "files"], tools=["read", "demo:echo"])
    assert scope.to_mapping() == {"demo": ["echo", "read"], "files": ["read"]}


def test_cli_without_tools_allows_all_tools():
    assert TokenScope.from_selection(servers=["demo"]).to_mapping() == {"demo": None}


@pytest.mark.parametrize("tools", [[""], [" ", ""], ["echo\nadd"], ["ec ho"], ["echo\x00"]])
def test_cli_tool_lists_that_name_no_tool_or_a_garbled_one_are_refused(tools):
    with pytest.raises(InvalidTokenRequest):
        TokenScope.from_selection(servers=["demo"], tools=tools)


@pytest.mark.parametrize("tools", [["other:echo"], ["demo:"]])
def test_cli_pin_to_a_server_outside_the_token_is_refused(tools):
    with pytest.raises(InvalidTokenRequest):
        TokenScope.from_selection(servers=["demo"], tools=tools)


@given(st.lists(names, min_size=1, max_size=4, unique=True), st.lists(names, max_size=4))
def test_cli_unpinned_tools_reach_every_server(servers, tools):
    scope = TokenScope.from_selection(servers=servers, tools=tools)
    assert set(scope.servers) == set(servers)
    for server in servers:
        assert all(scope.allows_tool(server, tool) for tool in tools)
