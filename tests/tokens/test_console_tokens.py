"""Console token pages: issue with a show-once page, list and filter, detail, rotate, revoke."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest

from audit import events
from audit.models import AuditEvent
from tests.factories import UpstreamServerFactory
from tokens.exceptions import TokenRevoked
from tokens.models import Token
from tokens.services import authenticate_token

SECRET_RE = re.compile(r'<pre id="token-secret" class="secret">(gth_[^<]+)</pre>')


@pytest.fixture
def demo(db):
    return UpstreamServerFactory(name="demo")


def _nonce(html: str) -> str:
    return re.search(r'name="nonce" value="([^"]+)"', html).group(1)


def _issue_form(client) -> dict[str, str]:
    html = client.get("/console/tokens/new/").content.decode()
    return {"nonce": _nonce(html), "name": "laptop", "owner": "alice", "ttl": "7d"}


def _secret(response) -> str:
    return unescape(SECRET_RE.search(response.content.decode()).group(1))


def _issue(client, **fields) -> tuple:
    data = _issue_form(client) | {"include__demo": "on", "mode__demo": "all"} | fields
    response = client.post("/console/tokens/new/", data)
    return response, data


def test_issuing_shows_the_token_once_with_all_snippets_in_order(staff_client, user, demo, settings):
    response, _ = _issue(staff_client)
    assert response.status_code == 200
    secret = _secret(response)
    authed = authenticate_token(raw_token=secret)
    assert authed.owner_username == "alice" and authed.scope.to_mapping() == {"demo": None}

    html = unescape(response.content.decode())
    url = f"{settings.PUBLIC_URL}/mcp/demo/"
    snippets = [
        f"npx -y supergateway --streamableHttp {url} --oauth2Bearer {secret}",
        f'npx -y supergateway --streamableHttp "{url}?key={secret}"',
        '"mcpServers": {',
        f'claude mcp add --transport http demo {url} --header "Authorization: Bearer {secret}"',
        "curl -sS -i -X POST",
    ]
    positions = [html.index(s) for s in snippets]
    assert positions == sorted(positions)
    assert "shown only once" in html


def test_a_legacy_sse_server_gets_its_sse_url_and_snippets(staff_client, user, demo, settings):
    demo.transport = "sse"
    demo.save()
    response, _ = _issue(staff_client)
    secret = _secret(response)
    html = unescape(response.content.decode())
    url = f"{settings.PUBLIC_URL}/sse/demo/"
    assert f"npx -y supergateway --sse {url} --oauth2Bearer {secret}" in html
    assert f"claude mcp add --transport sse demo {url}" in html
    assert "/mcp/demo/" not in html and "?key=" not in html


def test_the_show_once_page_is_never_cached(staff_client, user, demo):
    response, _ = _issue(staff_client)
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "no-referrer"


def test_reloading_the_show_once_page_does_not_show_the_token_again(staff_client, user, demo):
    response, data = _issue(staff_client)
    secret = _secret(response)
    again = staff_client.post("/console/tokens/new/", data, follow=True)
    html = again.content.decode()
    assert secret not in html and "gth_ey" not in html
    assert "never shown again" in html
    assert Token.objects.count() == 1


def test_the_token_never_appears_on_later_pages_or_in_logs(staff_client, user, demo, capfd):
    response, _ = _issue(staff_client)
    secret = _secret(response)
    token = Token.objects.get()
    for url in ("/console/tokens/", f"/console/tokens/{token.pk}/", f"/console/tokens/{token.pk}/revoke/",
                "/console/", "/console/servers/demo/"):
        page = staff_client.get(url)
        assert secret not in page.content.decode(), url
    captured = capfd.readouterr()
    assert secret not in captured.out + captured.err
    assert secret.split(".")[2] not in repr(list(AuditEvent.objects.values()))


def test_issue_form_labels_every_field_and_carries_csrf(staff_client, demo):
    html = staff_client.get("/console/tokens/new/").content.decode()
    for field in ("name", "owner", "ttl", "include__demo", "extra__demo"):
        assert f'<label for="id_{field}"' in html, field
    assert 'type="checkbox" name="include__demo"' in html and 'name="extra__demo"' in html
    assert "<legend>Tools on demo</legend>" in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_unreachable_upstream_degrades_to_a_free_text_tools_field(staff_client, user, demo):
    html = staff_client.get("/console/tokens/new/").content.decode()
    assert "Could not list the tools of demo" in html
    response, _ = _issue(staff_client, mode__demo="some", extra__demo="echo, add")
    assert authenticate_token(raw_token=_secret(response)).scope.to_mapping() == {"demo": ["add", "echo"]}


@pytest.mark.integration
def test_tools_are_picked_from_the_upstreams_live_list(staff_client, user, upstream_mcp, register_upstream):
    register_upstream(name="demo", url=upstream_mcp)
    html = staff_client.get("/console/tokens/new/").content.decode()
    assert 'name="tools__demo" value="echo"' in html and 'value="secret_tool"' in html
    response, _ = _issue(staff_client, mode__demo="some", tools__demo=["echo", "add"])
    assert authenticate_token(raw_token=_secret(response)).scope.to_mapping() == {"demo": ["add", "echo"]}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"include__demo": ""}, "Allow at least one server"),
        ({"mode__demo": "some", "extra__demo": ""}, "Pick at least one tool"),
        ({"mode__demo": "some", "extra__demo": "other:echo"}, "'other:echo' is not a tool name"),
        ({"mode__demo": "some", "extra__demo": "echo add"}, "'echo add' is not a tool name"),
        ({"ttl": "never"}, "never expire"),
        ({"ttl": "365d"}, "maximum"),
        ({"ttl": "soon"}, "not seconds or a duration"),
        ({"name": ""}, "This field is required"),
    ],
)
def test_invalid_issue_requests_are_explained_and_issue_nothing(staff_client, user, demo, fields, message):
    response, _ = _issue(staff_client, **fields)
    assert response.status_code == 200
    assert message in unescape(response.content.decode())
    assert not Token.objects.exists()


def test_never_expiring_tokens_when_settings_allow_them(staff_client, user, demo, settings):
    settings.TOKEN_ALLOW_NEVER_EXPIRES = True
    response, _ = _issue(staff_client, ttl="never")
    assert authenticate_token(raw_token=_secret(response)).expires_at is None


def test_token_list_filters_and_searches(staff_client, make_token):
    make_token(name="laptop")
    make_token({"files": ["read"]}, name="ci-nightly", ttl=timedelta(hours=3))
    html = staff_client.get("/console/tokens/").content.decode()
    assert "laptop" in html and "ci-nightly" in html
    html = staff_client.get("/console/tokens/", {"server": "files"}).content.decode()
    assert "ci-nightly" in html and "laptop" not in html
    html = staff_client.get("/console/tokens/", {"q": "lapt"}).content.decode()
    assert "laptop" in html and "ci-nightly" not in html
    html = staff_client.get("/console/tokens/", {"status": "revoked"}).content.decode()
    assert "No tokens match" in html
    html = staff_client.get("/console/tokens/", {"expiring": "1"}).content.decode()
    assert "laptop" in html and "ci-nightly" in html


def test_detail_shows_scope_and_status_history(staff_client, make_token):
    issued = make_token({"demo": ["echo"]})
    html = staff_client.get(f"/console/tokens/{issued.token.pk}/").content.decode()
    assert issued.token.display_prefix in html and "<code>echo</code>" in html
    assert "token.issued" in html and "Rotate token" in html and "Revoke token" in html


def test_rotate_shows_the_successor_once_and_keeps_the_old_one_for_the_grace(staff_client, make_token):
    issued = make_token()
    response = staff_client.post(f"/console/tokens/{issued.token.pk}/rotate/", {"grace": "1h"})
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    successor = _secret(response)
    assert authenticate_token(raw_token=successor)
    assert authenticate_token(raw_token=issued.secret)  # grace
    # Re-posting (a reload) does not mint or show anything.
    again = staff_client.post(f"/console/tokens/{issued.token.pk}/rotate/", {"grace": "1h"}, follow=True)
    assert "Not rotated" in again.content.decode() and successor not in again.content.decode()
    assert Token.objects.count() == 2


def test_revoke_needs_a_confirmation_step_and_records_the_reason(staff_client, make_token):
    issued = make_token()
    confirm = staff_client.get(f"/console/tokens/{issued.token.pk}/revoke/")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.content.decode()
    assert authenticate_token(raw_token=issued.secret)  # GET changed nothing
    response = staff_client.post(f"/console/tokens/{issued.token.pk}/revoke/", {"reason": "laptop lost"},
                                 follow=True)
    assert "revoked" in response.content.decode()
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=issued.secret)
    row = AuditEvent.objects.get(event=events.TOKEN_REVOKED)
    assert row.actor == "root-admin" and row.detail["reason"] == "laptop lost"


def test_auditor_reads_tokens_but_cannot_issue_rotate_or_revoke(auditor_client, make_token, demo):
    issued = make_token()
    pk = issued.token.pk
    assert auditor_client.get("/console/tokens/").status_code == 200
    detail = auditor_client.get(f"/console/tokens/{pk}/")
    assert detail.status_code == 200
    assert "Rotate token" not in detail.content.decode() and "Revoke token" not in detail.content.decode()
    assert "Issue a token" not in auditor_client.get("/console/tokens/").content.decode()
    assert auditor_client.get("/console/tokens/new/").status_code == 403
    assert auditor_client.post("/console/tokens/new/", {"name": "x"}).status_code == 403
    assert auditor_client.post(f"/console/tokens/{pk}/rotate/", {"grace": "0"}).status_code == 403
    assert auditor_client.get(f"/console/tokens/{pk}/revoke/").status_code == 403
    assert auditor_client.post(f"/console/tokens/{pk}/revoke/", {"reason": "x"}).status_code == 403
    assert Token.objects.get(pk=pk).status == Token.Status.ACTIVE
    assert Token.objects.count() == 1


def test_users_without_a_console_role_cannot_see_tokens(plain_client, make_token):
    issued = make_token()
    assert plain_client.get("/console/tokens/").status_code == 403
    assert plain_client.get(f"/console/tokens/{issued.token.pk}/").status_code == 403


def test_every_token_form_requires_csrf(csrf_staff_client, make_token, demo):
    issued = make_token()
    pk = issued.token.pk
    assert csrf_staff_client.post("/console/tokens/new/", {"name": "x"}).status_code == 403
    assert csrf_staff_client.post(f"/console/tokens/{pk}/rotate/", {"grace": "0"}).status_code == 403
    assert csrf_staff_client.post(f"/console/tokens/{pk}/revoke/", {"reason": "x"}).status_code == 403
    assert Token.objects.get(pk=pk).status == Token.Status.ACTIVE


def test_csrf_protected_issue_works_with_the_forms_token(csrf_staff_client, user, demo):
    html = csrf_staff_client.get("/console/tokens/new/").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    response = csrf_staff_client.post("/console/tokens/new/", {
        "csrfmiddlewaretoken": csrf, "nonce": _nonce(html), "name": "laptop", "owner": "alice", "ttl": "1h",
        "include__demo": "on", "mode__demo": "all",
    })
    assert response.status_code == 200 and SECRET_RE.search(response.content.decode())


def test_unknown_token_is_404(staff_client, db):
    assert staff_client.get("/console/tokens/999999/").status_code == 404


def test_a_server_ticked_without_a_tools_choice_gets_all_tools(staff_client, user, demo):
    data = _issue_form(staff_client) | {"include__demo": "on"}
    response = staff_client.post("/console/tokens/new/", data)
    assert authenticate_token(raw_token=_secret(response)).scope.to_mapping() == {"demo": None}
