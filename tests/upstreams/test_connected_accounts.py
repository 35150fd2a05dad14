"""Connected accounts: a server declares a user credential kind; each person connects their own,
stored encrypted; every change is audited without the value."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit import events
from audit.models import AuditEvent
from tests.factories import UserFactory
from upstreams import services, user_credentials
from upstreams.accounts import services as accounts
from upstreams.accounts.models import ConnectedAccount
from upstreams.exceptions import AccountError, InvalidServerConfig
from upstreams.models import UpstreamServer
from upstreams.user_credentials import OAuthProvider, UserCredentialSettings

pytestmark = pytest.mark.django_db

KEY = "sk-alice-very-secret-0001"


@pytest.fixture
def keyed(db) -> UpstreamServer:
    return services.create_server(
        name="keyed", url="http://127.0.0.1:9/mcp", actor="tests",
        user_credential=UserCredentialSettings(spec="header:X-Api-Key"),
    )


def test_add_server_with_a_header_user_credential(db):
    out = io.StringIO()
    call_command("add_server", "notes", "http://127.0.0.1:9/mcp", "--user-credential", "header:X-Api-Key",
                 stdout=out)
    server = UpstreamServer.objects.get(name="notes")
    assert (server.user_credential, server.user_credential_header) == ("header", "X-Api-Key")
    assert "X-Api-Key" in out.getvalue()
    created = AuditEvent.objects.get(event=events.SERVER_CREATED, server="notes")
    assert created.detail["user_credential"] == {"kind": "header", "header": "X-Api-Key"}


def test_add_server_with_an_oauth_user_credential_keeps_the_client_secret_encrypted(db):
    call_command(
        "add_server", "mail", "http://127.0.0.1:9/mcp", "--user-credential", "oauth",
        "--oauth-authorize-url", "http://127.0.0.1:9/authorize",
        "--oauth-token-url", "http://127.0.0.1:9/token", "--oauth-client-id", "gatehouse",
        "--oauth-client-secret", "client-secret-xyz", "--oauth-scopes", "read",
        stdout=io.StringIO(),
    )
    server = UpstreamServer.objects.get(name="mail")
    assert (server.user_credential, server.user_credential_header) == ("oauth", "Authorization")
    assert server.user_oauth["client_id"] == "gatehouse" and "client_secret" not in server.user_oauth
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tokens_upstreamserver WHERE name = %s", ["mail"])
        assert "client-secret-xyz" not in repr(cursor.fetchone())
    created = AuditEvent.objects.get(event=events.SERVER_CREATED, server="mail")
    assert "client-secret-xyz" not in str(created.detail)


@pytest.mark.parametrize(("settings", "message"), [
    (UserCredentialSettings(spec="header"), "Name the header"),
    (UserCredentialSettings(spec="basic:X"), "Unknown user credential kind"),
    (UserCredentialSettings(spec="oauth"), "needs the --oauth-"),
    (UserCredentialSettings(spec="header:Content-Type"), "managed by the gateway"),
    (UserCredentialSettings(spec="header:X-Static"), "already sends"),
    (UserCredentialSettings(spec="header:X-Key", oauth=OAuthProvider("http://a/x", "http://a/t", "id")),
     "are for --user-credential oauth"),
])
def test_bad_user_credential_settings_are_refused(db, settings, message):
    with pytest.raises(InvalidServerConfig, match=message):
        services.create_server(name="bad", url="http://127.0.0.1:9/mcp", actor="tests",
                               headers={"X-Static": "v"}, user_credential=settings)


def test_the_registry_is_where_kinds_are_declared():
    assert user_credentials.spec_forms() == ["header:HEADER-NAME", "oauth"]
    assert user_credentials.OAUTH.header_value("Authorization", "abc") == "Bearer abc"
    assert user_credentials.HEADER.header_value("X-Api-Key", "abc") == "abc"


def test_a_pasted_key_is_stored_encrypted_and_audited_without_its_value(keyed, user):
    accounts.connect_key(user=user, server=keyed, value=f"  {KEY}\n", actor=user.username)
    header = accounts.credential_header(user_id=user.pk, server_id=keyed.pk)
    assert header is not None and (header.name, header.value) == ("X-Api-Key", KEY)
    assert KEY not in repr(header)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM upstreams_connectedaccount")
        assert KEY not in repr(cursor.fetchall())
    connected = AuditEvent.objects.get(event=events.ACCOUNT_CONNECTED)
    assert (connected.owner, connected.server) == ("alice", "keyed")
    assert KEY not in str(AuditEvent.objects.values_list("detail", flat=True)[::1])


def test_disconnecting_forgets_the_credential_and_is_audited(keyed, user):
    accounts.connect_key(user=user, server=keyed, value=KEY, actor="alice")
    assert accounts.disconnect(user=user, server=keyed, actor="alice")
    assert accounts.credential_header(user_id=user.pk, server_id=keyed.pk) is None
    assert AuditEvent.objects.filter(event=events.ACCOUNT_DISCONNECTED, owner="alice").exists()
    assert not accounts.disconnect(user=user, server=keyed, actor="alice")


def test_a_key_with_a_line_break_or_for_a_server_without_user_credentials_is_refused(
    keyed, user, demo_server
):
    with pytest.raises(AccountError):
        accounts.connect_key(user=user, server=keyed, value="a\nb", actor="alice")
    with pytest.raises(AccountError):
        accounts.connect_key(user=user, server=demo_server, value=KEY, actor="alice")


def test_set_user_credential_reads_the_key_from_stdin_and_never_prints_it(keyed, user, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(KEY + "\n"))
    out = io.StringIO()
    call_command("set_user_credential", "keyed", "alice", stdout=out)
    assert KEY not in out.getvalue()
    assert ConnectedAccount.objects.get(user=user, server=keyed).status == "connected"
    call_command("set_user_credential", "keyed", "alice", "--remove", stdout=out)
    assert not ConnectedAccount.objects.exists()
    with pytest.raises(CommandError, match="No user"):
        call_command("set_user_credential", "keyed", "nobody", stdout=out)


def test_each_person_has_their_own(keyed, user):
    bob = UserFactory(username="bob")
    accounts.connect_key(user=user, server=keyed, value="alice-key", actor="alice")
    accounts.connect_key(user=bob, server=keyed, value="bob-key", actor="bob")
    assert accounts.credential_header(user_id=user.pk, server_id=keyed.pk).value == "alice-key"
    assert accounts.credential_header(user_id=bob.pk, server_id=keyed.pk).value == "bob-key"


def test_an_edit_cannot_give_the_personal_header_to_a_static_or_identity_header(keyed):
    with pytest.raises(InvalidServerConfig, match="own credential goes in X-Api-Key"):
        services.update_server(server=keyed, actor="tests", set_headers={"x-api-key": "shared"})
    with pytest.raises(InvalidServerConfig, match="own credential goes in X-Api-Key"):
        services.update_server(server=keyed, actor="tests", forward_identity=True,
                               identity_header="X-Api-Key")


def test_an_edit_moves_the_header_and_keeps_the_connections_of_the_same_kind(keyed, user):
    accounts.connect_key(user=user, server=keyed, value=KEY, actor="alice")
    services.update_server(server=keyed, actor="tests",
                           user_credential=UserCredentialSettings(spec="header:X-Key"))
    assert accounts.credential_header(user_id=user.pk, server_id=keyed.pk).name == "X-Key"
    updated = AuditEvent.objects.filter(event=events.SERVER_UPDATED, server="keyed").last()
    assert "user_credential" in updated.detail["changed"]


def test_an_edit_to_another_kind_ends_the_connections_of_the_old_one(keyed, user):
    accounts.connect_key(user=user, server=keyed, value=KEY, actor="alice")
    services.update_server(server=keyed, actor="root", user_credential=UserCredentialSettings())
    assert not ConnectedAccount.objects.exists()
    ended = AuditEvent.objects.get(event=events.ACCOUNT_DISCONNECTED)
    assert (ended.owner, ended.actor) == ("alice", "root")
    assert UpstreamServer.objects.get(pk=keyed.pk).user_credential == ""


def test_the_console_edit_keeps_the_client_secret_when_left_empty(staff_client):
    provider = OAuthProvider("http://127.0.0.1:9/a", "http://127.0.0.1:9/t", "gh", "client-secret-7")
    server = services.create_server(name="mail", url="http://127.0.0.1:9/mcp", actor="tests",
                                    user_credential=UserCredentialSettings(spec="oauth", oauth=provider))
    page = staff_client.get("/console/servers/mail/edit/").content.decode()
    assert "client-secret-7" not in page and 'value="oauth"' in page
    staff_client.post("/console/servers/mail/edit/", {
        "url": "http://127.0.0.1:9/mcp", "transport": "streamable", "identity_header": "Authorization",
        "isolation": "shared", "max_processes": 10, "user_credential": "oauth",
        "oauth_authorize_url": "http://127.0.0.1:9/a", "oauth_token_url": "http://127.0.0.1:9/t2",
        "oauth_client_id": "gh", "oauth_client_secret": "",
    })
    server.refresh_from_db()
    assert server.user_oauth["token_url"] == "http://127.0.0.1:9/t2"
    kept = user_credentials.provider_of(public=server.user_oauth,
                                        secret_encrypted=server.user_oauth_secret_encrypted)
    assert kept.client_secret == "client-secret-7"


def test_a_new_kind_is_one_registry_entry(db, user, monkeypatch):
    """A throwaway kind, added the way docs/architecture.md says: the command line, the services
    and the header the gateway sends all follow it."""
    basic = user_credentials.UserCredentialKind(
        name="basic", label="a personal Basic credential", connect="paste", default_header=None,
        header_value=lambda header, secret: f"Basic {secret}",
    )
    monkeypatch.setitem(user_credentials._KINDS, "basic", basic)
    call_command("add_server", "legacy", "http://127.0.0.1:9/mcp", "--user-credential", "basic:X-Legacy-Auth",
                 stdout=io.StringIO())
    server = UpstreamServer.objects.get(name="legacy")
    accounts.connect_key(user=user, server=server, value="YWxpY2U6cHc=", actor="alice")
    header = accounts.credential_header(user_id=user.pk, server_id=server.pk)
    assert (header.name, header.value) == ("X-Legacy-Auth", "Basic YWxpY2U6cHc=")
