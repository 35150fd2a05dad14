"""POST /api/v1/tokens/: minting within the API key's scope ceiling and maximum TTL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from tests.api.conftest import bearer_client
from tokens.models import Token
from tokens.services import authenticate_token

URL = "/api/v1/tokens/"


def mint(client, **body):
    return client.post(URL, body, content_type="application/json")


def test_mint_returns_a_working_token_limited_to_the_requested_tool(ci, ci_key):
    response = mint(ci, name="ci-42", servers=["demo"], tools={"demo": ["echo"]}, ttl="30m")

    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("gth_")
    assert body["scope"] == {"demo": ["echo"]}
    assert body["owner"] == "ci-bot"
    assert body["api_key"] == ci_key.api_key.display_prefix
    assert body["mcp_urls"]["demo"].endswith("/mcp/demo/")
    authed = authenticate_token(raw_token=body["token"])
    assert authed.token_id == body["id"]
    assert authed.scope.allows_tool("demo", "echo")
    assert not authed.scope.allows_tool("demo", "add")
    lifetime = authed.expires_at - Token.objects.get(pk=body["id"]).created_at
    assert lifetime == timedelta(minutes=30)


@pytest.mark.parametrize(("ttl", "seconds"), [(600, 600), ("900", 900), ("45m", 2700), ("1h", 3600)])
def test_ttl_is_seconds_or_a_duration(ci, ttl, seconds):
    body = mint(ci, name="ci", servers=["demo"], tools={"demo": ["echo"]}, ttl=ttl).json()

    token = Token.objects.get(pk=body["id"])
    assert (token.expires_at - token.created_at).total_seconds() == seconds


def test_tools_omitted_means_all_tools_of_each_server(servers, make_api_key):
    client = bearer_client(make_api_key(ceiling=None).secret)

    body = mint(client, name="ci", servers=["demo", "files"], tools={"files": ["read"]}, ttl="5m").json()

    assert body["scope"] == {"demo": None, "files": ["read"]}


def test_no_ttl_gives_the_gateway_default_capped_by_the_key(ci):
    body = mint(ci, name="ci", servers=["demo"], tools={"demo": ["echo"]}).json()

    token = Token.objects.get(pk=body["id"])
    assert token.expires_at - token.created_at == timedelta(hours=1)


def test_a_tool_beyond_the_ceiling_gets_403_naming_it(ci):
    response = mint(ci, name="ci", servers=["demo"], tools={"demo": ["echo", "delete_everything"]}, ttl="5m")

    assert response.status_code == 403
    assert response.json()["error"] == "scope_ceiling_exceeded"
    assert "demo:delete_everything" in response.json()["detail"]
    assert not Token.objects.exists()


def test_all_tools_of_a_capped_server_exceeds_the_ceiling(ci):
    response = mint(ci, name="ci", servers=["demo"], ttl="5m")

    assert response.status_code == 403
    assert "all tools of 'demo'" in response.json()["detail"]


def test_a_server_beyond_the_ceiling_gets_403_naming_it(ci):
    response = mint(ci, name="ci", servers=["files"], ttl="5m")

    assert response.status_code == 403
    assert "server 'files'" in response.json()["detail"]


def test_ttl_beyond_the_keys_maximum_gets_403_naming_the_limit(ci):
    response = mint(ci, name="ci", servers=["demo"], tools={"demo": ["echo"]}, ttl="2h")

    assert response.status_code == 403
    body = response.json()
    assert body["error"] == "scope_ceiling_exceeded"
    assert "maximum TTL of 1h (3600 seconds)" in body["detail"]


def test_a_never_expiring_token_is_refused(ci):
    response = mint(ci, name="ci", servers=["demo"], tools={"demo": ["echo"]}, ttl="never")

    assert response.status_code == 400
    assert response.json()["fields"]["ttl"]


def test_unknown_server_gets_400(ci):
    response = mint(ci, name="ci", servers=["nope"], ttl="5m")

    assert response.status_code == 400
    assert response.json() == {"error": "invalid_request", "detail": "Unknown server(s): nope."}


def test_tools_for_a_server_not_requested_gets_400(ci):
    response = mint(ci, name="ci", servers=["demo"], tools={"files": ["read"]}, ttl="5m")

    assert response.status_code == 400
    assert "files" in response.json()["detail"]


def test_validation_errors_name_each_field(ci):
    response = ci.post(URL, {"servers": "demo", "ttl": "soon"}, content_type="application/json")

    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_request"
    assert set(body["fields"]) == {"name", "servers", "ttl"}
    assert "name: This field is required." in body["detail"]


def test_malformed_json_gets_400_in_the_same_shape(ci):
    response = ci.post(URL, "{not json", content_type="application/json")

    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert response.json()["detail"]


def test_the_token_is_shown_only_in_the_mint_response(ci):
    secret = mint(ci, name="ci", servers=["demo"], tools={"demo": ["echo"]}, ttl="5m").json()["token"]
    token = Token.objects.get()

    listed = ci.get(URL)
    detail = ci.get(f"{URL}{token.pk}/")

    for response in (listed, detail):
        assert response.status_code == 200
        assert secret not in response.content.decode()
        assert '"token"' not in response.content.decode()
    assert not AuditEvent.objects.filter(detail__icontains=secret[4:40]).exists()


def test_minting_is_audited_with_the_key_as_actor(ci, ci_key):
    body = mint(ci, name="ci-42", servers=["demo"], tools={"demo": ["echo"]}, ttl="5m").json()

    issued = AuditEvent.objects.get(event="token.issued")
    assert issued.token_jti == body["jti"]
    assert issued.actor == f"ci-bot via {ci_key.api_key.display_prefix}"
    used = AuditEvent.objects.get(event="apikey.used")
    assert (used.outcome, used.status) == ("success", 201)
    assert used.detail["path"] == URL


def test_a_refused_mint_is_audited_as_denied_use_of_the_key(ci):
    mint(ci, name="ci", servers=["demo"], tools={"demo": ["rm"]}, ttl="5m")

    used = AuditEvent.objects.get(event="apikey.used")
    assert (used.outcome, used.status) == ("denied", 403)
    assert used.detail["error"] == "scope_ceiling_exceeded"
    assert "demo:rm" in used.detail["reason"]


def test_key_last_used_is_recorded_at_most_once_a_minute(ci, ci_key):
    ci.get(URL)
    ci_key.api_key.refresh_from_db()
    first = ci_key.api_key.last_used_at
    assert first is not None and first <= timezone.now()

    ci.get(URL)
    ci_key.api_key.refresh_from_db()
    assert ci_key.api_key.last_used_at == first
