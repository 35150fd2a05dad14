"""Upstream URLs and header lines: what admins may enter, and how URLs are shown without secrets."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from upstreams.exceptions import InvalidServerConfig
from upstreams.headers import merge_headers, parse_header_lines
from upstreams.url import redacted_url, validate_upstream_url


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:3001/mcp", "https://mcp.example.com/v1/mcp", "http://everything:3001/sse",
            "http://[::1]:8080/mcp", "https://user@host.example/mcp?tenant=a"],
)
def test_reasonable_upstream_urls_are_accepted(url):
    validate_upstream_url(url)


@pytest.mark.parametrize(
    "url", ["", "127.0.0.1:3001/mcp", "ftp://host/mcp", "http:///mcp", "http://host:notaport/mcp",
            "http://host/mcp#x", "http://ho st/mcp", "javascript:alert(1)"],
)
def test_unreasonable_upstream_urls_are_refused(url):
    with pytest.raises(ValidationError):
        validate_upstream_url(url)


def test_redacted_url_hides_passwords_and_query_values():
    shown = redacted_url("https://bot:hunter2@up.example:8443/mcp?api_key=abc&tenant=blue")
    assert shown == "https://bot:***@up.example:8443/mcp?api_key=***&tenant=***"
    assert redacted_url("https://token123@up.example/mcp") == "https://***@up.example/mcp"
    assert redacted_url("http://127.0.0.1:3001/mcp") == "http://127.0.0.1:3001/mcp"


@given(st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12))
def test_redacted_url_never_contains_a_query_value_or_password(secret):
    secret = "S" + secret.replace("&", "").replace("#", "").replace("@", "") + "S"
    shown = redacted_url(f"https://u:{secret}@h.example/mcp?k={secret}")
    assert f"k={secret}" not in shown and f"u:{secret}@" not in shown


def test_header_lines_are_parsed_and_names_compared_case_insensitively():
    assert parse_header_lines(["Authorization: Bearer a:b", "", "x-key:  v  ", "X-KEY: w"]) == {
        "Authorization": "Bearer a:b", "X-KEY": "w"}


@pytest.mark.parametrize(
    "line", ["novalue", "Bad Name: x", "Host: evil", "mcp-session-id: x", "X-Empty:", "X-Ok: a\rInjected: b"],
)
def test_bad_header_lines_are_refused_without_echoing_the_value(line):
    with pytest.raises(InvalidServerConfig) as info:
        parse_header_lines([line])
    if ":" in line and line.split(":", 1)[1].strip():
        assert line.split(":", 1)[1].strip() not in info.value.detail


def test_merge_replaces_and_removes_by_name():
    current = {"Authorization": "old", "X-Team": "blue"}
    merged = merge_headers(current, set_headers={"authorization": "new"}, remove=["X-TEAM"])
    assert merged == {"authorization": "new"}
