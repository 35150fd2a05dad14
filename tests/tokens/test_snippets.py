"""The show-once snippets: exact, in the recommended order, built from GATEHOUSE_PUBLIC_URL."""

from __future__ import annotations

import json
import shlex
import subprocess

from tokens.snippets import connection_snippets

TOKEN = "gth_eyJhbGciOiJFZERTQSJ9.eyJqdGkiOiJhYmMifQ.c2lnbmF0dXJl"


def _snippets(public_url="https://gw.example.com"):
    return {s.key: s for s in connection_snippets(token=TOKEN, server="demo", public_url=public_url)}


def test_snippets_come_in_the_recommended_order():
    keys = [s.key for s in connection_snippets(token=TOKEN, server="demo", public_url="https://gw.example.com")]
    assert keys == [
        "supergateway-header", "supergateway-query", "mcp-remote", "claude-desktop", "claude-code", "curl"]


def test_mcp_remote_sends_the_token_in_a_header():
    assert _snippets()["mcp-remote"].text == (
        f'npx -y mcp-remote https://gw.example.com/mcp/demo/ --header "Authorization: Bearer {TOKEN}"'
    )
    sse = {s.key: s for s in connection_snippets(token=TOKEN, server="old", public_url="https://gw.example.com",
                                                 transport="sse")}
    assert shlex.split(sse["mcp-remote"].text)[3:6] == ["https://gw.example.com/sse/old/", "--transport",
                                                        "sse-only"]


def test_each_caption_says_what_its_command_does():
    snippets = _snippets()
    assert "forwards every message to the gateway" in snippets["supergateway-header"].hint
    assert "initialize request" in snippets["curl"].hint
    # A stdio server is still reached over HTTP by Claude Code: the caption says what the line does.
    stdio = {s.key: s for s in connection_snippets(token=TOKEN, server="fetch", transport="stdio",
                                                   public_url="https://gw.example.com")}
    assert "--transport http" in stdio["claude-code"].text
    assert "as an HTTP MCP server" in stdio["claude-code"].hint and "stdio" not in stdio["claude-code"].hint


def test_supergateway_header_form_is_first_and_exact():
    assert _snippets()["supergateway-header"].text == (
        f"npx -y supergateway --streamableHttp https://gw.example.com/mcp/demo/ --oauth2Bearer {TOKEN}"
    )


def test_supergateway_query_form_quotes_the_url():
    assert _snippets()["supergateway-query"].text == (
        f'npx -y supergateway --streamableHttp "https://gw.example.com/mcp/demo/?key={TOKEN}"'
    )


def test_claude_desktop_config_runs_supergateway_with_a_bearer_header():
    config = json.loads(_snippets()["claude-desktop"].text)
    assert config == {
        "mcpServers": {
            "demo": {
                "command": "npx",
                "args": ["-y", "supergateway", "--streamableHttp", "https://gw.example.com/mcp/demo/",
                         "--oauth2Bearer", TOKEN],
            }
        }
    }


def test_claude_code_command_is_exact():
    assert _snippets()["claude-code"].text == (
        f'claude mcp add --transport http demo https://gw.example.com/mcp/demo/ '
        f'--header "Authorization: Bearer {TOKEN}"'
    )


def test_curl_sends_a_valid_initialize_with_the_token_in_a_header():
    words = shlex.split(_snippets()["curl"].text.replace("\\\n", " "))
    assert words[:5] == ["curl", "-sS", "-i", "-X", "POST"]
    assert "https://gw.example.com/mcp/demo/" in words
    assert f"Authorization: Bearer {TOKEN}" in words
    assert "Accept: application/json, text/event-stream" in words
    body = json.loads(words[words.index("-d") + 1])
    assert body["method"] == "initialize" and body["jsonrpc"] == "2.0"
    assert body["params"]["protocolVersion"]


def test_every_shell_snippet_parses_to_the_intended_words():
    snippets = _snippets()
    assert shlex.split(snippets["supergateway-query"].text)[-1] == f"https://gw.example.com/mcp/demo/?key={TOKEN}"
    assert shlex.split(snippets["claude-code"].text)[-1] == f"Authorization: Bearer {TOKEN}"


def test_public_url_comes_from_settings_and_loses_a_trailing_slash(settings):
    settings.PUBLIC_URL = "https://mcp.corp.example/gw"
    snippet = connection_snippets(token=TOKEN, server="files")[0]
    assert "https://mcp.corp.example/gw/mcp/files/ " in snippet.text
    assert _snippets("https://gw.example.com/")["supergateway-header"].text.count("//mcp") == 0


def _shell_words(command: str) -> list[str]:
    """How a real POSIX shell splits ``command`` (shlex does not honour \\$ inside double quotes)."""
    args = command.split(" ", 1)[1]
    out = subprocess.run(["sh", "-c", f"printf '%s\\n' {args}"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()


def test_a_public_url_with_shell_metacharacters_stays_one_word():
    odd = "https://gw.example.com/$HOME`x`"
    snippets = {s.key: s for s in connection_snippets(token=TOKEN, server="demo", public_url=odd)}
    assert _shell_words(snippets["supergateway-header"].text)[3] == f"{odd}/mcp/demo/"
    assert _shell_words(snippets["supergateway-query"].text)[3] == f"{odd}/mcp/demo/?key={TOKEN}"
