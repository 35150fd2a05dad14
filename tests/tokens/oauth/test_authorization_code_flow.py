"""The OAuth authorization server in-process: what a client and a person see at each step, and
every hostile variation refused. Real clients over real sockets are in test_real_clients.py."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management import call_command
from django.test import Client

from audit.models import AuditEvent
from tests.factories import UpstreamServerFactory, UserFactory
from tokens.exceptions import TokenRevoked
from tokens.models import Token
from tokens.oauth import grants
from tokens.services import authenticate_token

REDIRECT = "http://127.0.0.1:33418/callback"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


@pytest.fixture(autouse=True)
def _servers(db, settings):
    # Registration is rate limited per address, and every test client comes from 127.0.0.1.
    cache.clear()
    settings.OAUTH_REGISTRATION = "on"
    UpstreamServerFactory(name="demo")
    UpstreamServerFactory(name="files")


@pytest.fixture
def person(db):
    alice = UserFactory(username="alice")
    alice.set_password("correct horse")
    alice.save()
    return alice


@pytest.fixture
def granted(person):
    grants.grant_access(user=person, servers=["demo"], tools=["echo", "add"], actor="tests")
    return person


def register(client: Client | None = None, **metadata) -> dict:
    body = {
        "client_name": "Claude",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        **metadata,
    }
    response = (client or Client()).post("/oauth/register", json.dumps(body), content_type="application/json")
    assert response.status_code == 201, response.content
    return response.json()


def authorize_params(client_id: str, challenge: str, **overrides) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT,
        "state": "xyz",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "resource": f"{settings.PUBLIC_URL}/mcp/demo/",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def consent(browser: Client, params: dict[str, str], *, decision: str = "allow", tools=None):
    page = browser.get("/oauth/authorize", params)
    assert page.status_code == 200, page.content
    form = dict(params)
    form["decision"] = decision
    form["tools"] = tools if tools is not None else ["demo:echo", "demo:add"]
    return browser.post("/oauth/authorize", form)


def query_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def token_request(**form) -> tuple[int, dict]:
    response = Client().post(
        "/oauth/token", urlencode(form), content_type="application/x-www-form-urlencoded"
    )
    return response.status_code, response.json()


@pytest.fixture
def connected(granted):
    """A public client that went through consent: (client_id, verifier, code)."""
    client_id = register()["client_id"]
    verifier, challenge = pkce()
    browser = Client()
    browser.force_login(granted)
    answer = consent(browser, authorize_params(client_id, challenge))
    assert answer.status_code == 302
    return client_id, verifier, query_of(answer["Location"])["code"]


def exchange(client_id: str, verifier: str, code: str, **extra) -> tuple[int, dict]:
    return token_request(
        grant_type="authorization_code",
        client_id=client_id,
        code=code,
        redirect_uri=REDIRECT,
        code_verifier=verifier,
        resource=f"{settings.PUBLIC_URL}/mcp/demo/",
        **extra,
    )


# --- discovery -------------------------------------------------------------------------------


def test_protected_resource_metadata_names_gatehouse_as_its_authorization_server(client):
    for path in ("/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/mcp/demo/"):
        body = client.get(path).json()
        assert body["authorization_servers"] == [settings.PUBLIC_URL]
    assert client.get("/.well-known/oauth-protected-resource/mcp/demo/").json()["scopes_supported"] == [
        "mcp:demo"
    ]


def test_authorization_server_metadata_is_rfc_8414_with_s256_only(client):
    body = client.get("/.well-known/oauth-authorization-server").json()
    assert body["issuer"] == settings.PUBLIC_URL
    assert body["authorization_endpoint"] == f"{settings.PUBLIC_URL}/oauth/authorize"
    assert body["token_endpoint"] == f"{settings.PUBLIC_URL}/oauth/token"
    assert body["registration_endpoint"] == f"{settings.PUBLIC_URL}/oauth/register"
    assert body["code_challenge_methods_supported"] == ["S256"]
    assert body["client_id_metadata_document_supported"] is True
    assert "none" in body["token_endpoint_auth_methods_supported"]


# --- the happy path --------------------------------------------------------------------------


def test_signed_out_person_is_sent_to_the_console_login_and_back(db):
    client_id = register()["client_id"]
    _, challenge = pkce()
    answer = Client().get("/oauth/authorize", authorize_params(client_id, challenge))
    assert answer.status_code == 302
    assert answer["Location"].startswith("/accounts/login/?next=")
    assert answer["Location"].startswith("/accounts/login/?next=/oauth/authorize%3F")


def test_consent_page_names_client_redirect_host_server_and_tools_and_cannot_be_framed(granted):
    client_id = register(client_name="Claude Desktop")["client_id"]
    _, challenge = pkce()
    browser = Client()
    browser.force_login(granted)
    page = browser.get("/oauth/authorize", authorize_params(client_id, challenge))
    html = page.content.decode()
    assert "Allow Claude Desktop to use demo?" in html
    assert "a name the app gave itself" in html  # a DCR name is self-asserted: the page says so
    assert "127.0.0.1" in html
    assert 'value="demo:echo" checked' in html and 'value="demo:add" checked' in html
    assert page["X-Frame-Options"] == "DENY"
    assert "no-store" in page["Cache-Control"] or "max-age=0" in page["Cache-Control"]


def test_allow_returns_code_state_and_iss_and_the_code_buys_a_gth_token_within_the_grant(connected):
    client_id, verifier, code = connected
    status, body = exchange(client_id, verifier, code)
    assert status == 200, body
    assert body["token_type"] == "Bearer"
    assert body["access_token"].startswith("gth_")
    assert body["expires_in"] == 3600
    assert body["scope"] == "mcp:demo:add mcp:demo:echo"
    verified = authenticate_token(raw_token=body["access_token"])
    assert verified.owner_username == "alice"
    assert verified.scope.to_mapping() == {"demo": ["add", "echo"]}
    issued = AuditEvent.objects.filter(event="token.issued", token_jti=verified.jti).get()
    assert issued.detail["via"] == "oauth" and issued.detail["client_id"] == client_id
    assert code not in json.dumps(list(AuditEvent.objects.values("detail")), default=str)
    assert body["refresh_token"] not in json.dumps(list(AuditEvent.objects.values("detail")), default=str)


def test_authorization_response_carries_state_and_issuer(granted):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = Client()
    browser.force_login(granted)
    location = consent(browser, authorize_params(client_id, challenge))["Location"]
    assert location.startswith(REDIRECT + "?")
    query = query_of(location)
    assert query["state"] == "xyz"
    assert query["iss"] == settings.PUBLIC_URL


def test_unticked_tools_are_left_out_of_the_token(granted):
    client_id = register()["client_id"]
    verifier, challenge = pkce()
    browser = Client()
    browser.force_login(granted)
    code = query_of(
        consent(browser, authorize_params(client_id, challenge), tools=["demo:echo"])["Location"]
    )["code"]
    _, body = exchange(client_id, verifier, code)
    assert authenticate_token(raw_token=body["access_token"]).scope.to_mapping() == {"demo": ["echo"]}


def test_a_loopback_redirect_matches_on_any_port(granted):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = Client()
    browser.force_login(granted)
    other_port = "http://127.0.0.1:50123/callback"
    location = consent(browser, authorize_params(client_id, challenge, redirect_uri=other_port))["Location"]
    assert location.startswith(other_port + "?code=")


def test_refresh_rotates_and_the_new_token_works(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    status, second = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    assert status == 200, second
    assert second["refresh_token"] != first["refresh_token"]
    assert authenticate_token(raw_token=second["access_token"]).owner_username == "alice"


def test_grant_ttl_shortens_the_access_token(person):
    grants.grant_access(
        user=person, servers=["demo"], max_ttl=__import__("datetime").timedelta(minutes=10), actor="tests"
    )
    client_id = register()["client_id"]
    verifier, challenge = pkce()
    browser = Client()
    browser.force_login(person)
    page = browser.get("/oauth/authorize", authorize_params(client_id, challenge))
    assert page.status_code == 200
    form = {**authorize_params(client_id, challenge), "decision": "allow"}
    code = query_of(browser.post("/oauth/authorize", form)["Location"])["code"]
    status, body = exchange(client_id, verifier, code)
    assert status == 200, body
    assert body["expires_in"] == 600
    assert body["scope"] == "mcp:demo"


def test_a_group_grant_counts_for_its_members(person):
    group = Group.objects.create(name="engineers")
    person.groups.add(group)
    call_command("grant_access", "--group", "engineers", "--servers", "files")
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = Client()
    browser.force_login(person)
    page = browser.get(
        "/oauth/authorize",
        authorize_params(client_id, challenge, resource=f"{settings.PUBLIC_URL}/mcp/files"),
    )
    assert page.status_code == 200
    assert "Allow Claude to use files?" in page.content.decode()


# --- hostile and refused ---------------------------------------------------------------------


def test_person_without_a_grant_sees_a_clear_page_and_the_client_gets_access_denied(person):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = Client()
    browser.force_login(person)
    page = browser.get("/oauth/authorize", authorize_params(client_id, challenge))
    assert page.status_code == 403
    html = page.content.decode()
    assert "You have no access to demo" in html
    assert "error=access_denied" in html and "state=xyz" in html
    assert AuditEvent.objects.filter(event="oauth.denied", owner="alice").exists()


def test_deny_sends_access_denied_and_no_code(granted):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = Client()
    browser.force_login(granted)
    query = query_of(consent(browser, authorize_params(client_id, challenge), decision="deny")["Location"])
    assert query["error"] == "access_denied" and "code" not in query and query["state"] == "xyz"
    assert AuditEvent.objects.filter(event="oauth.denied").exists()


def test_consent_post_without_csrf_token_is_refused(granted):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(granted)
    answer = browser.post(
        "/oauth/authorize",
        {**authorize_params(client_id, challenge), "decision": "allow", "tools": ["demo:echo"]},
    )
    assert answer.status_code == 403


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"resource": None}, "invalid_target"),
        ({"resource": "https://evil.example/mcp"}, "invalid_target"),
    ],
)
def test_bad_authorization_requests_go_back_to_the_client_with_an_error(granted, overrides, error):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = Client()
    browser.force_login(granted)
    answer = browser.get("/oauth/authorize", authorize_params(client_id, challenge, **overrides))
    assert answer.status_code == 302
    query = query_of(answer["Location"])
    assert answer["Location"].startswith(REDIRECT)
    assert query["error"] == error and query["state"] == "xyz" and query["iss"] == settings.PUBLIC_URL


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "https://evil.example/callback",
        "http://127.0.0.1:33418/callback/../../evil",
        "http://127.0.0.1:33418/other",
        "http://localhost.evil.example:33418/callback",
        "http://127.0.0.1:33418/callback?x=1",
    ],
)
def test_an_unregistered_redirect_is_never_redirected_to(granted, redirect_uri):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = Client()
    browser.force_login(granted)
    answer = browser.get(
        "/oauth/authorize", authorize_params(client_id, challenge, redirect_uri=redirect_uri)
    )
    assert answer.status_code == 400
    assert "not registered" in answer.content.decode()
    assert "Location" not in answer


def test_an_unknown_client_gets_an_error_page_not_a_redirect(granted):
    _, challenge = pkce()
    answer = Client().get("/oauth/authorize", authorize_params("gthc_nobody", challenge))
    assert answer.status_code == 401 and "Location" not in answer


def test_wrong_pkce_verifier_is_refused(connected):
    client_id, _, code = connected
    status, body = exchange(client_id, pkce()[0], code)
    assert (status, body["error"]) == (400, "invalid_grant")


def test_missing_pkce_verifier_is_refused(connected):
    client_id, _, code = connected
    status, body = exchange(client_id, "", code)
    assert (status, body["error"]) == (400, "invalid_grant")


def test_a_code_for_another_client_is_refused(connected):
    _, verifier, code = connected
    other = register(client_name="Other")["client_id"]
    status, body = exchange(other, verifier, code)
    assert (status, body["error"]) == (400, "invalid_grant")


def test_a_replayed_code_revokes_the_token_it_gave(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    status, body = exchange(client_id, verifier, code)
    assert (status, body["error"]) == (400, "invalid_grant")
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=first["access_token"])
    status, body = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    assert AuditEvent.objects.filter(event="oauth.code_reused").exists()


def test_a_reused_refresh_token_revokes_the_whole_family(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    _, second = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    status, body = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    for access in (first["access_token"], second["access_token"]):
        with pytest.raises(TokenRevoked):
            authenticate_token(raw_token=access)
    status, _ = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=second["refresh_token"]
    )
    assert status == 400
    reused = AuditEvent.objects.get(event="oauth.refresh_reused")
    assert first["refresh_token"] not in json.dumps(reused.detail)


def test_revoking_the_access_token_ends_its_refresh_token(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    call_command("revoke_token", authenticate_token(raw_token=first["access_token"]).jti)
    status, body = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    assert (status, body["error"]) == (400, "invalid_grant")


def test_rfc_7009_revocation_of_a_refresh_token_revokes_its_access_token(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    answer = Client().post(
        "/oauth/revoke",
        urlencode({"token": first["refresh_token"], "client_id": client_id}),
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=first["access_token"])


def test_another_client_cannot_revoke_someone_elses_token(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    other = register(client_name="Other")["client_id"]
    answer = Client().post(
        "/oauth/revoke",
        urlencode({"token": first["access_token"], "client_id": other}),
        content_type="application/x-www-form-urlencoded",
    )
    assert answer.status_code == 200
    assert authenticate_token(raw_token=first["access_token"]).owner_username == "alice"


def test_narrowing_a_grant_revokes_tokens_that_exceed_it(connected, person):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    call_command("grant_access", "--user", "alice", "--servers", "demo", "--tools", "echo")
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=first["access_token"])
    status, _ = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    assert status == 400


def test_removing_a_grant_revokes_the_oauth_tokens_but_not_admin_issued_ones(connected, person, make_token):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    admin_issued = make_token({"demo": None}, owner=person)
    call_command("revoke_access", "--user", "alice")
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=first["access_token"])
    assert authenticate_token(raw_token=admin_issued.secret).owner_username == "alice"


def test_confidential_client_must_authenticate_at_the_token_endpoint(granted):
    registered = register(token_endpoint_auth_method="client_secret_basic")
    assert registered["client_secret"]
    verifier, challenge = pkce()
    browser = Client()
    browser.force_login(granted)
    code = query_of(consent(browser, authorize_params(registered["client_id"], challenge))["Location"])[
        "code"
    ]
    status, body = exchange(registered["client_id"], verifier, code)
    assert (status, body["error"]) == (401, "invalid_client")
    basic = base64.b64encode(f"{registered['client_id']}:{registered['client_secret']}".encode()).decode()
    response = Client().post(
        "/oauth/token",
        urlencode(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            }
        ),
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION=f"Basic {basic}",
    )
    # The failed attempt above spent nothing: the code was looked up only after client auth.
    assert response.status_code == 200, response.content
    assert registered["client_secret"] not in json.dumps(
        list(AuditEvent.objects.values("detail")), default=str
    )


@pytest.mark.parametrize(
    "uri",
    [
        "javascript:alert(1)",
        "data:text/html,hi",
        "http://evil.example/cb",
        "file:///etc/passwd",
        "https://good.example/cb#frag",
        "vbscript:msgbox",
        "https://user:pw@good.example/cb",
        "http://evil.example\\@127.0.0.1/cb",
    ],
)
def test_registration_refuses_dangerous_redirect_uris(db, uri):
    answer = Client().post(
        "/oauth/register", json.dumps({"redirect_uris": [uri]}), content_type="application/json"
    )
    assert answer.status_code == 400
    assert answer.json()["error"] == "invalid_redirect_uri"


def test_registration_accepts_native_app_schemes_and_https(db):
    body = register(
        redirect_uris=[
            "cursor://anysphere.cursor-retrieval/oauth/callback",
            "https://claude.ai/api/mcp/auth_callback",
        ]
    )
    assert body["client_id"].startswith("gthc_")
    assert AuditEvent.objects.filter(event="oauth.client_registered").exists()


def test_registration_can_be_closed(db, settings):
    settings.OAUTH_REGISTRATION = "off"
    answer = Client().post(
        "/oauth/register", json.dumps({"redirect_uris": [REDIRECT]}), content_type="application/json"
    )
    assert answer.status_code == 403 and answer.json()["error"] == "access_denied"
    assert "registration_endpoint" not in Client().get("/.well-known/oauth-authorization-server").json()


def test_registration_is_rate_limited_per_address(db, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "oauth_register": "2/h",
        },
    }
    # A made-up X-Forwarded-For is no new address: the limit keys on the socket's.
    statuses = [
        Client()
        .post(
            "/oauth/register",
            json.dumps({"redirect_uris": [REDIRECT]}),
            content_type="application/json",
            HTTP_X_FORWARDED_FOR=f"198.51.100.{n}",
        )
        .status_code
        for n in range(3)
    ]
    assert statuses == [201, 201, 429]


def test_token_endpoint_errors_are_rfc_6749_json_and_never_cached(db):
    response = Client().post(
        "/oauth/token", "grant_type=password&client_id=x", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    assert response["Cache-Control"].startswith("no-store") or "no-store" in response["Cache-Control"]
    client_id = register()["client_id"]
    status, body = token_request(grant_type="password", client_id=client_id)
    assert (status, body["error"]) == (400, "unsupported_grant_type")


def test_oauth_tokens_are_listed_with_their_client(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    token = Token.objects.get(jti=authenticate_token(raw_token=first["access_token"]).jti)
    assert token.oauth_connection is not None
    assert token.oauth_connection.client.client_id == client_id


def test_an_oversize_state_is_shown_not_truncated_back_to_the_client(granted):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = Client()
    browser.force_login(granted)
    answer = browser.get("/oauth/authorize", authorize_params(client_id, challenge, state="s" * 2001))
    assert answer.status_code == 400 and "Location" not in answer


def test_leaving_a_group_revokes_what_its_grant_gave(person):
    group = Group.objects.create(name="engineers")
    person.groups.add(group)
    call_command("grant_access", "--group", "engineers", "--servers", "demo")
    client_id = register()["client_id"]
    verifier, challenge = pkce()
    browser = Client()
    browser.force_login(person)
    code = query_of(consent(browser, authorize_params(client_id, challenge))["Location"])["code"]
    _, first = exchange(client_id, verifier, code)
    assert authenticate_token(raw_token=first["access_token"]).owner_username == "alice"
    person.groups.remove(group)
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=first["access_token"])


@pytest.mark.parametrize(
    "redirect_uri", ["http://evil.example\\@127.0.0.1:33418/callback", "http://x@127.0.0.1:33418/callback"]
)
def test_a_loopback_lookalike_with_credentials_or_a_backslash_never_matches(granted, redirect_uri):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = Client()
    browser.force_login(granted)
    answer = browser.get(
        "/oauth/authorize", authorize_params(client_id, challenge, redirect_uri=redirect_uri)
    )
    assert answer.status_code == 400 and "Location" not in answer
    assert "evil.example" not in answer.content.decode()


def test_an_oversize_scope_is_refused_never_truncated(granted):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = Client()
    browser.force_login(granted)
    answer = browser.get(
        "/oauth/authorize", authorize_params(client_id, challenge, scope="x" * 1995 + " mcp:demo")
    )
    assert answer.status_code == 302
    assert query_of(answer["Location"])["error"] == "invalid_scope"


def test_a_redirect_uri_left_out_at_authorize_need_not_be_repeated(granted):
    client_id = register()["client_id"]
    verifier, challenge = pkce()
    browser = Client()
    browser.force_login(granted)
    params = authorize_params(client_id, challenge, redirect_uri=None)
    location = consent(browser, params)["Location"]
    assert location.startswith(REDIRECT)
    status, body = token_request(
        grant_type="authorization_code",
        client_id=client_id,
        code=query_of(location)["code"],
        code_verifier=verifier,
    )
    assert status == 200, body


def test_a_client_that_did_not_register_refresh_gets_no_refresh_token(granted):
    client_id = register(grant_types=["authorization_code"])["client_id"]
    verifier, challenge = pkce()
    browser = Client()
    browser.force_login(granted)
    code = query_of(consent(browser, authorize_params(client_id, challenge))["Location"])["code"]
    status, body = exchange(client_id, verifier, code)
    assert status == 200 and "refresh_token" not in body


def test_revoking_one_oauth_token_ends_the_others_of_its_consent(connected):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    _, second = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    call_command("revoke_token", authenticate_token(raw_token=second["access_token"]).jti)
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=first["access_token"])


def test_an_inactive_person_gets_no_new_token(connected, person):
    client_id, verifier, code = connected
    _, first = exchange(client_id, verifier, code)
    person.is_active = False
    person.save()
    status, body = token_request(
        grant_type="refresh_token", client_id=client_id, refresh_token=first["refresh_token"]
    )
    assert (status, body["error"]) == (400, "invalid_grant")
