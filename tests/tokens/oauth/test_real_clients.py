"""Real MCP clients, given only ``<gatehouse>/mcp/demo/``, reach the granted tools after a person
signs in and consents in Chromium: the official Python SDK (``OAuthClientProvider``, by Dynamic
Client Registration and by a Client ID Metadata Document served over https with a test CA) and
``mcp-remote`` from npm. A denied consent and a person without a grant leave the client without
access. Protocol-level hostile cases are in flow/ (one file per endpoint or feature).

The flows live in ``tests.support.oauth_clients``; a failure message carries the whole outcome
(authorization URL, what the browser saw, what the client got) and the server log.
"""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tests.support.oauth_clients import (
    CallbackServer,
    launched_browser,
    mcp_remote_flow,
    query_of,
    sdk_flow,
)
from tests.support.processes import free_port

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

SDK_CLIENT_NAME = "Gatehouse test SDK client"


def run_sdk(site, **kwargs):
    async def flow():
        async with launched_browser() as browser:
            return await sdk_flow(site.mcp(), site.person, browser=browser, **kwargs)

    return asyncio.run(flow())


def run_mcp_remote(site, home, **kwargs):
    async def flow():
        async with launched_browser() as browser:
            return await mcp_remote_flow(site.mcp(), site.person, browser=browser, home=home, **kwargs)

    return asyncio.run(flow())


def assert_consented(outcome, site, *, client_name: str, tools: list[str]) -> None:
    """The person signed in, saw a consent whose heading names the client and whose page names the
    server, with every granted tool ticked, and the client got a code for its own state with
    ``iss`` = the issuer."""
    browser = outcome.browser
    assert browser is not None, outcome.describe()
    assert browser.signed_in, outcome.describe()
    assert browser.consent_shown, outcome.describe()
    assert client_name in browser.consent_heading, outcome.describe()
    assert "demo" in browser.consent_text, outcome.describe()
    assert sorted(browser.tools_offered) == sorted(tools), outcome.describe()
    assert sorted(browser.tools_checked) == sorted(tools), outcome.describe()
    callback = outcome.callback or {}
    assert "code" in callback and callback.get("iss") == site.base, outcome.describe()
    assert callback.get("state") == query_of(outcome.authorization_url).get("state"), outcome.describe()


def test_discovery_documents_name_gatehouse_as_the_authorization_server(oauth_site):
    """What every client reads first (checked on its own so a failure here is precise)."""
    base = oauth_site.base
    challenge = httpx.post(oauth_site.mcp(), json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                           headers={"Accept": "application/json, text/event-stream"})
    assert challenge.status_code == 401, challenge.text
    header = challenge.headers.get("WWW-Authenticate", "")
    assert header.startswith("Bearer ") and "resource_metadata=" in header, header

    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp/demo/"):
        resource = httpx.get(base + path)
        assert resource.status_code == 200, (path, resource.status_code, resource.text)
        assert resource.json()["authorization_servers"] == [base], (path, resource.json())
    assert httpx.get(base + "/.well-known/oauth-protected-resource/mcp/demo/").json()["resource"] == (
        oauth_site.mcp()
    )

    metadata = httpx.get(base + "/.well-known/oauth-authorization-server")
    assert metadata.status_code == 200, metadata.text
    document = metadata.json()
    assert document["issuer"] == base, document
    assert {name: document.get(name) for name in (
        "authorization_endpoint", "token_endpoint", "registration_endpoint", "revocation_endpoint")} == {
        "authorization_endpoint": f"{base}/oauth/authorize",
        "token_endpoint": f"{base}/oauth/token",
        "registration_endpoint": f"{base}/oauth/register",
        "revocation_endpoint": f"{base}/oauth/revoke",
    }, document
    assert document["code_challenge_methods_supported"] == ["S256"], document
    assert document["client_id_metadata_document_supported"] is True, document
    assert "none" in document["token_endpoint_auth_methods_supported"], document


def test_sdk_client_registers_itself_and_reaches_the_tools_the_person_ticked(oauth_site):
    oauth_site.grant(tools="echo,add")

    outcome = run_sdk(oauth_site, untick=["add"])

    assert outcome.error is None, outcome.describe()
    assert_consented(outcome, oauth_site, client_name=SDK_CLIENT_NAME, tools=["echo", "add"])
    assert outcome.storage.client_info.client_id, outcome.describe()  # registered by DCR
    assert not outcome.storage.client_info.client_id.startswith("https://"), outcome.describe()
    assert outcome.tools == ["echo"], outcome.describe()
    assert (outcome.call_text, outcome.call_is_error) == ("hello through oauth", False), outcome.describe()
    assert outcome.access_token.startswith("gth_"), outcome.describe()
    assert outcome.storage.tokens.refresh_token, outcome.describe()

    # The client restarted with what it saved: its token works without the person.
    async def restarted():
        async with launched_browser() as browser:
            return await sdk_flow(oauth_site.mcp(), None, browser=browser, storage=outcome.storage)

    again = asyncio.run(restarted())
    assert again.error is None and again.tools == ["echo"], again.describe()
    assert again.authorization_url == "", again.describe()


def test_sdk_client_refreshes_an_expired_token_without_the_person(oauth_site):
    """Once its access token has expired the SDK refreshes (no browser); the server rotates the
    refresh token and keeps the scope the person consented to."""
    oauth_site.grant(tools="echo,add")

    outcome = run_sdk(oauth_site, untick=["add"], refresh_midway=True)

    assert outcome.error is None, outcome.describe()
    before = outcome.tokens_before_refresh
    after = outcome.storage.tokens
    assert outcome.tools_after_refresh == ["echo"], outcome.describe()
    assert after.access_token.startswith("gth_"), outcome.describe()
    assert after.access_token != before.access_token, "the expired access token was not replaced"
    assert after.refresh_token and after.refresh_token != before.refresh_token, "refresh token not rotated"


def test_sdk_client_steps_up_to_a_tool_the_person_unticked(oauth_site):
    """A call to a tool the grant allows but the token lacks answers 403 ``insufficient_scope``
    with the scope to ask for; the SDK asks the person again and the call then goes through."""
    oauth_site.grant(tools="echo,add")

    outcome = run_sdk(oauth_site, untick=["add"], call=("add", {"a": 2, "b": 3}))

    assert outcome.error is None, outcome.describe()
    assert outcome.tools == ["echo"], outcome.describe()
    assert len(outcome.browsers) == 2, outcome.describe()
    assert "add" in outcome.browsers[1].tools_checked, outcome.describe()
    assert "mcp:demo:add" in query_of(outcome.authorization_url).get("scope", "").split(), outcome.describe()
    assert (outcome.call_text, outcome.call_is_error) == ("5", False), outcome.describe()


def test_mcp_remote_with_a_client_id_metadata_document(oauth_site, document_server, tmp_path):
    oauth_site.grant(tools="echo,add")
    port = free_port()
    name = f"mcp-remote-{uuid.uuid4().hex[:8]}"
    client_id = document_server.publish_client(name, [f"http://127.0.0.1:{port}/oauth/callback"])

    outcome = run_mcp_remote(oauth_site, tmp_path / "home", callback_port=port,
                             extra_args=["--client-metadata-url", client_id])

    assert outcome.error is None, outcome.describe()
    assert query_of(outcome.authorization_url)["client_id"] == client_id, outcome.describe()
    assert_consented(outcome, oauth_site, client_name=f"CIMD {name}", tools=["echo", "add"])
    assert outcome.tools == ["add", "echo"], outcome.describe()
    assert outcome.call_text == "hello through mcp-remote" and not outcome.call_is_error, outcome.describe()


def test_a_server_url_is_answered_with_that_servers_resource_metadata(oauth_site):
    """Given ``/mcp/demo/``, a client reads the metadata the 401 names (RFC 9728 §5.1) and asks
    for its ``resource``: that should be the server, so the token is limited to it."""
    answer = httpx.post(oauth_site.mcp(), json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                        headers={"Accept": "application/json, text/event-stream"})
    header = answer.headers.get("WWW-Authenticate", "")
    metadata_url = f"{oauth_site.base}/.well-known/oauth-protected-resource/mcp/demo/"
    assert f'resource_metadata="{metadata_url}"' in header, header


def test_sdk_client_with_a_client_id_metadata_document(oauth_site, document_server):
    oauth_site.grant(tools="echo,add")
    name = f"sdk-{uuid.uuid4().hex[:8]}"

    async def flow():
        with CallbackServer() as callback:
            client_id = document_server.publish_client(name, [callback.url])
            async with launched_browser() as browser:
                outcome = await sdk_flow(oauth_site.mcp(), oauth_site.person, browser=browser,
                                         client_metadata_url=client_id, callback=callback)
            return client_id, outcome

    client_id, outcome = asyncio.run(flow())

    assert outcome.error is None, outcome.describe()
    assert outcome.storage.client_info.client_id == client_id, outcome.describe()  # no DCR
    assert query_of(outcome.authorization_url)["client_id"] == client_id, outcome.describe()
    assert document_server.fetches(client_id) >= 1, "Gatehouse never fetched the client metadata document"
    assert_consented(outcome, oauth_site, client_name=f"CIMD {name}", tools=["echo", "add"])
    assert "127.0.0.1" in outcome.browser.consent_text, outcome.describe()  # the document's host
    assert outcome.tools == ["add", "echo"], outcome.describe()
    assert (outcome.call_text, outcome.call_is_error) == ("hello through oauth", False), outcome.describe()
    assert outcome.access_token.startswith("gth_"), outcome.describe()


def test_mcp_remote_reaches_the_tools_the_person_ticked(oauth_site, tmp_path):
    oauth_site.grant(tools="echo,add")

    outcome = run_mcp_remote(oauth_site, tmp_path / "home", untick=["add"])

    assert outcome.error is None, outcome.describe()
    assert_consented(outcome, oauth_site, client_name="MCP CLI Proxy", tools=["echo", "add"])
    assert outcome.tools == ["echo"], outcome.describe()
    assert outcome.call_text == "hello through mcp-remote" and not outcome.call_is_error, outcome.describe()

    # Started again with the same HOME, it uses the tokens it stored: no browser this time.
    again = run_mcp_remote(oauth_site, tmp_path / "home")
    assert again.error is None and again.tools == ["echo"], again.describe()
    assert again.authorization_url == "", again.describe()


def test_denied_consent_leaves_the_sdk_client_without_access(oauth_site):
    oauth_site.grant(tools="echo,add")

    outcome = run_sdk(oauth_site, decision="deny")

    assert outcome.browser is not None and outcome.browser.consent_shown, outcome.describe()
    callback = outcome.callback or {}
    assert callback.get("error") == "access_denied" and "code" not in callback, outcome.describe()
    assert callback.get("state") == query_of(outcome.authorization_url).get("state"), outcome.describe()
    assert callback.get("iss") == oauth_site.base, outcome.describe()
    assert outcome.tools is None and outcome.access_token is None, outcome.describe()
    assert outcome.error and "access_denied" in outcome.error, outcome.describe()


def test_denied_consent_leaves_mcp_remote_without_access(oauth_site, tmp_path):
    oauth_site.grant(tools="echo,add")

    outcome = run_mcp_remote(oauth_site, tmp_path / "home", decision="deny")

    assert outcome.browser is not None and outcome.browser.consent_shown, outcome.describe()
    assert (outcome.callback or {}).get("error") == "access_denied", outcome.describe()
    assert outcome.tools is None and outcome.error, outcome.describe()


def test_person_without_a_grant_is_told_so_and_the_client_gets_access_denied(oauth_site):
    outcome = run_sdk(oauth_site)  # no grant for this person

    browser = outcome.browser
    assert browser is not None and browser.signed_in, outcome.describe()
    assert not browser.consent_shown, outcome.describe()
    assert "no access" in browser.page_text.lower(), outcome.describe()
    assert (outcome.callback or {}).get("error") == "access_denied", outcome.describe()
    assert outcome.tools is None and outcome.access_token is None, outcome.describe()
