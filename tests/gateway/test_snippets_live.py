"""Every snippet the console shows works when pasted: run against the live gateway as a user would.

``npx -y supergateway`` and ``npx -y mcp-remote`` are swapped for the pinned binaries of
tests/clients (no registry access in tests); the Claude Code line is checked by sending what it
configures, since that CLI is not here.
"""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.gateway.drivers import INIT, StdioClient
from tokens.snippets import Snippet, connection_snippets

pytestmark = pytest.mark.integration

NPX_SUPERGATEWAY = ["npx", "-y", "supergateway"]


@pytest.fixture
def snippets(gw) -> dict[str, Snippet]:
    token = gw.token({"demo": ["echo", "add"]})
    return {s.key: s for s in connection_snippets(token=token.secret, server="demo", public_url=gw.url)}


@pytest.fixture
def sse_snippets(gw) -> dict[str, Snippet]:
    token = gw.token({"demo-sse": ["echo", "add"]})
    found = connection_snippets(token=token.secret, server="demo-sse", public_url=gw.url, transport="sse")
    return {s.key: s for s in found}


def _tools_over_stdio(command: list[str], supergateway_bin: Path, stderr_path: Path) -> list[str]:
    assert command[:3] == NPX_SUPERGATEWAY
    client = StdioClient([supergateway_bin, *command[3:], "--logLevel", "none"], stderr_path=stderr_path)
    try:
        assert client.initialize()["result"]["serverInfo"]["name"] == "gatehouse-test-upstream"
        return sorted(t["name"] for t in client.request("tools/list")["result"]["tools"])
    finally:
        client.close()


@pytest.mark.parametrize("key", ["supergateway-header", "supergateway-query"])
def test_supergateway_lines_reach_the_token_s_tools(snippets, key, supergateway_bin, tmp_path):
    command = shlex.split(snippets[key].text)
    assert _tools_over_stdio(command, supergateway_bin, tmp_path / "sg.log") == ["add", "echo"]


def test_mcp_remote_line_reaches_the_token_s_tools(snippets, tmp_path):
    from tests.support.oauth_clients import mcp_remote_bin

    command = shlex.split(snippets["mcp-remote"].text)
    assert command[:3] == ["npx", "-y", "mcp-remote"]
    client = StdioClient([mcp_remote_bin(), *command[3:]], stderr_path=tmp_path / "mcp-remote.log")
    try:
        assert client.initialize()["result"]["serverInfo"]["name"] == "gatehouse-test-upstream"
        assert sorted(t["name"] for t in client.request("tools/list")["result"]["tools"]) == ["add", "echo"]
    finally:
        client.close()


def test_claude_desktop_entry_reaches_the_token_s_tools(snippets, supergateway_bin, tmp_path):
    entry = json.loads(snippets["claude-desktop"].text)["mcpServers"]["demo"]
    command = [entry["command"], *entry["args"]]
    assert _tools_over_stdio(command, supergateway_bin, tmp_path / "sg.log") == ["add", "echo"]


def test_curl_snippet_initializes_a_session(snippets):
    result = subprocess.run(
        ["bash", "-c", snippets["curl"].text], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    head, _, body = result.stdout.partition("\n\n")  # text mode turned curl's CRLFs into LFs
    assert head.startswith("HTTP/1.1 200")
    assert "mcp-session-id:" in head.lower()
    assert "gatehouse-test-upstream" in body


def test_claude_code_line_configures_a_working_url_and_header(snippets):
    words = shlex.split(snippets["claude-code"].text)
    assert words[:5] == ["claude", "mcp", "add", "--transport", "http"]
    name, url, flag, header = words[5:]
    assert (name, flag) == ("demo", "--header")
    header_name, _, header_value = header.partition(": ")
    response = httpx.post(
        url,
        json=INIT,
        headers={header_name: header_value, "Accept": "application/json, text/event-stream"},
        timeout=15,
    )
    assert response.status_code == 200 and response.headers["mcp-session-id"]


def test_a_legacy_sse_server_gets_sse_snippets_that_work(sse_snippets, supergateway_bin, tmp_path):
    assert list(sse_snippets) == [
        "supergateway-header", "mcp-remote", "claude-desktop", "claude-code", "curl"]
    command = shlex.split(sse_snippets["supergateway-header"].text)
    assert command[3] == "--sse"
    assert _tools_over_stdio(command, supergateway_bin, tmp_path / "sg.log") == ["add", "echo"]
    entry = json.loads(sse_snippets["claude-desktop"].text)["mcpServers"]["demo-sse"]
    assert _tools_over_stdio([entry["command"], *entry["args"]], supergateway_bin, tmp_path / "sg2.log") == [
        "add",
        "echo",
    ]
    assert shlex.split(sse_snippets["claude-code"].text)[3:5] == ["--transport", "sse"]


def test_legacy_sse_curl_snippet_opens_the_event_stream(sse_snippets):
    # The stream stays open until the user presses Ctrl-C: stop it after the first event.
    result = subprocess.run(
        ["timeout", "5", "bash", "-c", sse_snippets["curl"].text], capture_output=True, text=True, check=False
    )
    assert result.stdout.startswith("HTTP/1.1 200")
    assert "event: endpoint" in result.stdout and "/messages/demo-sse/?session_id=" in result.stdout
