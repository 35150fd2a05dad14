"""GET /api/v1/servers/: names and gateway URLs, never upstream credentials."""

from __future__ import annotations

from django.contrib.auth.models import Group

from core.permissions import AUDITOR_GROUP
from tests.api.conftest import bearer_client
from tests.factories import UserFactory
from tokens import crypto
from upstreams.models import UpstreamServer


def test_servers_list_never_shows_header_values_or_url_credentials(make_api_key, db):
    UpstreamServer.objects.create(
        name="vault",
        url="https://svc:hunter2@upstream.internal/mcp?key=qs-secret",
        headers_encrypted=crypto.encrypt_json({"Authorization": "Bearer upstream-secret-value"}),
    )
    auditor = UserFactory(username="auditor")
    auditor.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    client = bearer_client(make_api_key(owner=auditor).secret)

    response = client.get("/api/v1/servers/")

    assert response.status_code == 200
    text = response.content.decode()
    for secret in ("upstream-secret-value", "hunter2", "qs-secret"):
        assert secret not in text
    (server,) = response.json()
    assert server["name"] == "vault"
    assert server["mcp_url"].endswith("/mcp/vault/")
    assert server["upstream_url"] == "https://svc:***@upstream.internal/mcp?key=***"


def test_a_non_staff_key_does_not_see_upstream_urls(ci):
    servers = ci.get("/api/v1/servers/").json()

    assert {s["name"] for s in servers} == {"demo", "files"}
    assert all(s["upstream_url"] is None for s in servers)


def test_a_server_by_name(ci):
    assert ci.get("/api/v1/servers/demo/").json()["name"] == "demo"
    assert ci.get("/api/v1/servers/nope/").status_code == 404


def test_a_legacy_sse_server_is_listed_with_its_sse_gateway_url(ci):
    UpstreamServer.objects.filter(name="files").update(transport="sse")

    urls = {s["name"]: s["mcp_url"] for s in ci.get("/api/v1/servers/").json()}

    assert urls["demo"].endswith("/mcp/demo/")
    assert urls["files"].endswith("/sse/files/")


def test_a_server_with_connected_accounts_says_which_kind_and_header_never_a_secret(make_api_key, db):
    from upstreams.services import create_server
    from upstreams.user_credentials import OAuthProvider, UserCredentialSettings

    provider = OAuthProvider("http://127.0.0.1:9/a", "http://127.0.0.1:9/t", "gh", "client-secret-9")
    create_server(name="mail", url="http://127.0.0.1:9/mcp", actor="tests",
                  user_credential=UserCredentialSettings(spec="oauth", oauth=provider))
    client = bearer_client(make_api_key(owner=UserFactory(username="auditor2", is_staff=True)).secret)

    response = client.get("/api/v1/servers/mail/")

    expected = {"kind": "oauth", "header": "Authorization"}
    assert response.json()["user_credential"] == expected
    assert "client-secret-9" not in response.content.decode()
    assert client.get("/api/v1/servers/").json()[0]["user_credential"] == expected
