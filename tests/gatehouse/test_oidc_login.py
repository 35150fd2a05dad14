"""Console sign-in with OpenID Connect, against a real provider (django-oauth-toolkit, its own
process) and the real Gatehouse server: the authorization-code flow end to end, roles from the
provider's groups on every sign-in, no takeover of local accounts, everything audited."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from django.contrib.auth.models import User

from audit.models import AuditEvent
from tests.gatehouse.subprocesses import embedded_env, run_python
from tests.support.fixtures import LiveServer
from tests.support.oidc import USERS
from tests.support.processes import free_port, running, serve_args, subprocess_env

CONSOLE_CLIENT = ("gatehouse-console", "console-client-secret-0123456789")


@pytest.fixture(scope="module")
def sso_gateway(oidc_provider, django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[LiveServer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    oidc_provider.register_client(*CONSOLE_CLIENT, redirect_uris=[f"{url}/oidc/callback/"])
    with django_db_blocker.unblock():
        env = subprocess_env({
            "GATEHOUSE_OIDC_ISSUER": oidc_provider.issuer, "GATEHOUSE_OIDC_CLIENT_ID": CONSOLE_CLIENT[0],
            "GATEHOUSE_OIDC_CLIENT_SECRET": CONSOLE_CLIENT[1], "GATEHOUSE_OIDC_NAME": "Acme SSO",
            "GATEHOUSE_OIDC_ADMIN_GROUPS": "gatehouse-admins",
            "GATEHOUSE_OIDC_AUDITOR_GROUPS": "gatehouse-auditors",
        })
    log_path = tmp_path_factory.mktemp("daphne-sso") / "daphne.log"
    with running(serve_args(port), env=env, ready_url=f"{url}/health", log_path=log_path):
        yield LiveServer(url=url, log_path=log_path)


def sign_in(gateway: LiveServer, provider, user: str) -> httpx.Client:
    """A browser's walk: Gatehouse → the provider (signed in as ``user``) → Gatehouse's callback."""
    browser = httpx.Client(base_url=gateway.url, timeout=15)
    login_page = browser.get("/accounts/login/")
    assert "Sign in with Acme SSO" in login_page.text
    start = browser.get("/oidc/authenticate/")
    assert start.status_code == 302 and start.headers["location"].startswith(f"{provider.issuer}/authorize/")
    at_provider = provider.login_session(user=user)
    try:
        authorized = at_provider.get(start.headers["location"])
    finally:
        at_provider.close()
    assert authorized.status_code == 302, authorized.text[:300]
    callback = authorized.headers["location"]
    assert callback.startswith(f"{gateway.url}/oidc/callback/?")
    browser.get(callback.removeprefix(gateway.url))
    return browser


@pytest.mark.usefixtures("transactional_db")
@pytest.mark.integration
def test_an_admin_of_the_provider_uses_the_console_and_the_sign_in_is_audited(sso_gateway, oidc_provider):
    browser = sign_in(sso_gateway, oidc_provider, "alice")
    assert browser.get("/console/").status_code == 200
    assert browser.get("/console/issuers/new/").status_code == 200  # staff: may change things
    user = User.objects.get(username="alice@example.com")
    assert user.is_staff and not user.has_usable_password()
    login = AuditEvent.objects.filter(event="console.login", actor="alice@example.com").latest("id")
    assert login.detail == {"method": "oidc", "issuer": oidc_provider.issuer}
    log = sso_gateway.log()
    assert '"query": "code=***&state=' in log  # the authorization code is masked in the access log
    assert CONSOLE_CLIENT[1] not in log


@pytest.mark.usefixtures("transactional_db")
@pytest.mark.integration
def test_roles_follow_the_providers_groups_on_every_sign_in(sso_gateway, oidc_provider):
    auditor = sign_in(sso_gateway, oidc_provider, "bob")
    assert auditor.get("/console/audit/").status_code == 200
    assert auditor.get("/console/issuers/new/").status_code == 403
    assert sign_in(sso_gateway, oidc_provider, "eve").get("/console/audit/").status_code == 403

    users_file = oidc_provider.workdir / "users.json"
    users = json.loads(users_file.read_text())
    users["alice"]["claims"]["groups"] = []  # removed from the admin group at the provider
    users_file.write_text(json.dumps(users))
    try:
        assert sign_in(sso_gateway, oidc_provider, "alice").get("/console/audit/").status_code == 403
        assert not User.objects.get(username="alice@example.com").is_staff
    finally:
        users["alice"]["claims"]["groups"] = USERS["alice"]["claims"]["groups"]
        users_file.write_text(json.dumps(users))


@pytest.mark.usefixtures("transactional_db")
@pytest.mark.integration
def test_a_local_account_is_never_taken_over_and_the_refusal_is_audited(sso_gateway, oidc_provider):
    local = User.objects.create_user("eve@example.com", password="local-secret-pass-1", is_staff=True)
    browser = sign_in(sso_gateway, oidc_provider, "eve")
    assert browser.get("/console/").status_code == 302  # not signed in: back to the login page
    refused = AuditEvent.objects.filter(event="console.login_failed").latest("id")
    assert refused.detail["method"] == "oidc" and "local account" in refused.detail["reason"]
    local.refresh_from_db()
    assert local.has_usable_password() and local.groups.count() == 0


@pytest.mark.usefixtures("transactional_db")
@pytest.mark.integration
def test_a_forged_callback_is_refused(sso_gateway):
    browser = httpx.Client(base_url=sso_gateway.url, timeout=15)
    browser.get("/oidc/authenticate/")
    forged = browser.get("/oidc/callback/?code=made-up&state=wrong")
    assert forged.status_code in (302, 400)
    assert browser.get("/console/").status_code == 302


def test_password_sign_in_can_be_switched_off(client, settings, django_user_model):
    django_user_model.objects.create_user("root", password="local-secret-pass-1", is_staff=True,
                                          is_superuser=True)
    settings.LOCAL_LOGIN = False
    settings.OIDC_ISSUER = "https://idp.example.com"
    page = client.get("/accounts/login/").content.decode()
    assert "Sign in with" in page and 'name="password"' not in page
    refused = client.post("/accounts/login/", {"username": "root", "password": "local-secret-pass-1"})
    assert refused.status_code == 403
    admin = client.post("/admin/login/", {"username": "root", "password": "local-secret-pass-1"})
    assert admin.status_code == 200 and "_auth_user_id" not in client.session


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GATEHOUSE_OIDC_ISSUER": "https://idp.example.com"}, "GATEHOUSE_OIDC_CLIENT_ID"),
        ({"GATEHOUSE_OIDC_ISSUER": "http://idp.example.com", "GATEHOUSE_OIDC_CLIENT_ID": "x",
          "GATEHOUSE_OIDC_CLIENT_SECRET": "y"}, "must be https"),
        ({"GATEHOUSE_LOCAL_LOGIN": "false"}, "nobody could sign in"),
    ],
)
@pytest.mark.integration
def test_half_configured_sign_in_stops_startup_naming_the_variable(tmp_path, env, message):
    result = run_python("import django; django.setup()", env=embedded_env(tmp_path, **env))
    assert result.returncode != 0 and message in result.stderr
