"""/oauth/authorize: sign-in, the consent page, and every bad request refused without a stray redirect."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from audit.models import AuditEvent
from tests.tokens.oauth.flow.steps import (
    REDIRECT,
    authorize_params,
    consent,
    exchange,
    pkce,
    query_of,
    register,
    signed_in,
)
from tokens.services import authenticate_token


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
    browser = signed_in(granted)
    page = browser.get("/oauth/authorize", authorize_params(client_id, challenge))
    html = page.content.decode()
    assert "Allow Claude Desktop to use demo?" in html
    assert "a name the app gave itself" in html  # a DCR name is self-asserted: the page says so
    assert "127.0.0.1" in html
    assert 'value="demo:echo" checked' in html and 'value="demo:add" checked' in html
    assert page["X-Frame-Options"] == "DENY"
    assert "no-store" in page["Cache-Control"] or "max-age=0" in page["Cache-Control"]


def test_authorization_response_carries_state_and_issuer(granted):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = signed_in(granted)
    location = consent(browser, authorize_params(client_id, challenge))["Location"]
    assert location.startswith(REDIRECT + "?")
    query = query_of(location)
    assert query["state"] == "xyz"
    assert query["iss"] == settings.PUBLIC_URL


def test_unticked_tools_are_left_out_of_the_token(granted):
    client_id = register()["client_id"]
    verifier, challenge = pkce()
    browser = signed_in(granted)
    code = query_of(
        consent(browser, authorize_params(client_id, challenge), tools=["demo:echo"])["Location"]
    )["code"]
    _, body = exchange(client_id, verifier, code)
    assert authenticate_token(raw_token=body["access_token"]).scope.to_mapping() == {"demo": ["echo"]}


def test_a_loopback_redirect_matches_on_any_port(granted):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = signed_in(granted)
    other_port = "http://127.0.0.1:50123/callback"
    location = consent(browser, authorize_params(client_id, challenge, redirect_uri=other_port))["Location"]
    assert location.startswith(other_port + "?code=")


def test_person_without_a_grant_sees_a_clear_page_and_the_client_gets_access_denied(person):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = signed_in(person)
    page = browser.get("/oauth/authorize", authorize_params(client_id, challenge))
    assert page.status_code == 403
    html = page.content.decode()
    assert "You have no access to demo" in html
    assert "error=access_denied" in html and "state=xyz" in html
    assert AuditEvent.objects.filter(event="oauth.denied", owner="alice").exists()


def test_deny_sends_access_denied_and_no_code(granted):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = signed_in(granted)
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
    browser = signed_in(granted)
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
    browser = signed_in(granted)
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


def test_an_oversize_state_is_shown_not_truncated_back_to_the_client(granted):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = signed_in(granted)
    answer = browser.get("/oauth/authorize", authorize_params(client_id, challenge, state="s" * 2001))
    assert answer.status_code == 400 and "Location" not in answer


@pytest.mark.parametrize(
    "redirect_uri", ["http://evil.example\\@127.0.0.1:33418/callback", "http://x@127.0.0.1:33418/callback"]
)
def test_a_loopback_lookalike_with_credentials_or_a_backslash_never_matches(granted, redirect_uri):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = signed_in(granted)
    answer = browser.get(
        "/oauth/authorize", authorize_params(client_id, challenge, redirect_uri=redirect_uri)
    )
    assert answer.status_code == 400 and "Location" not in answer
    assert "evil.example" not in answer.content.decode()


def test_an_oversize_scope_is_refused_never_truncated(granted):
    client_id = register()["client_id"]
    _, challenge = pkce()
    browser = signed_in(granted)
    answer = browser.get(
        "/oauth/authorize", authorize_params(client_id, challenge, scope="x" * 1995 + " mcp:demo")
    )
    assert answer.status_code == 302
    assert query_of(answer["Location"])["error"] == "invalid_scope"
