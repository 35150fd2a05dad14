"""The management commands: the stable CLI, the token alone on the last stdout line, errors on stderr."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from tests.factories import UpstreamServerFactory
from tests.support.processes import REPO_ROOT, subprocess_env
from tokens import crypto
from tokens.exceptions import TokenRevoked
from tokens.models import SigningKey, Token
from tokens.services import authenticate_token
from upstreams.models import UpstreamServer


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue()


def last_line(output: str) -> str:
    return output.rstrip("\n").splitlines()[-1]


@pytest.fixture
def servers(db):
    return [UpstreamServerFactory(name="demo"), UpstreamServerFactory(name="files")]


# --- add_server -----------------------------------------------------------------------------


def test_add_server_stores_headers_encrypted_and_never_prints_them(db):
    output = run(
        "add_server", "demo", "http://everything:3001/mcp",
        "--header", "Authorization: Bearer up-secret", "--header", "X-Team:blue",
    )
    server = UpstreamServer.objects.get(name="demo")
    assert server.url == "http://everything:3001/mcp"
    assert server.transport == "streamable"
    stored = crypto.decrypt_json(server.headers_encrypted)
    assert stored == {"Authorization": "Bearer up-secret", "X-Team": "blue"}
    assert "up-secret" not in server.headers_encrypted
    assert "up-secret" not in output and "blue" not in output
    assert "Authorization, X-Team" in output
    assert output.rstrip().endswith("clients use /mcp/demo/")
    audit = AuditEvent.objects.get(event=events.SERVER_CREATED)
    assert "up-secret" not in repr(audit.detail)
    assert audit.detail["header_names"] == ["Authorization", "X-Team"]


def test_add_server_with_sse_transport(db):
    output = run("add_server", "legacy", "http://127.0.0.1:9/sse", "--transport", "sse")
    assert UpstreamServer.objects.get(name="legacy").transport == "sse"
    assert output.rstrip().endswith("clients use /sse/legacy/")


@pytest.mark.parametrize(
    "args",
    [
        ["Bad Name", "http://127.0.0.1:9/mcp"],
        ["demo", "ftp://127.0.0.1/mcp"],
        ["demo", "not a url"],
        ["demo", "http://127.0.0.1:9/mcp", "--header", "NoColon"],
        ["demo", "http://127.0.0.1:9/mcp", "--header", "Host: evil"],
    ],
)
def test_add_server_refuses_bad_input(db, args):
    with pytest.raises(CommandError):
        run("add_server", *args)
    assert not UpstreamServer.objects.exists()


def test_add_server_refuses_a_duplicate_name(servers):
    with pytest.raises(CommandError, match="already exists"):
        run("add_server", "demo", "http://127.0.0.1:9/mcp")


# --- issue_token ----------------------------------------------------------------------------


def test_issue_token_prints_the_token_alone_on_the_last_line(servers, user):
    output = run("issue_token", "--name", "ci", "--owner", user.username, "--server", "demo")
    secret = last_line(output)
    assert secret.startswith("gth_") and " " not in secret
    authed = authenticate_token(raw_token=secret)
    assert authed.owner_username == user.username
    assert authed.scope.to_mapping() == {"demo": None}


def test_issue_token_defaults_to_seven_days(servers, user):
    run("issue_token", "--name", "ci", "--owner", user.username, "--server", "demo")
    token = Token.objects.get()
    assert token.expires_at - token.created_at == timedelta(days=7)


def test_issue_token_tools_apply_to_every_server_and_pins_restrict_one(servers, user):
    secret = last_line(run(
        "issue_token", "--name", "ci", "--owner", user.username, "--server", "demo", "--server", "files",
        "--tools", "read,demo:echo", "--ttl", "1h",
    ))
    scope = authenticate_token(raw_token=secret).scope
    assert scope.to_mapping() == {"demo": ["echo", "read"], "files": ["read"]}
    token = Token.objects.get()
    assert token.expires_at - token.created_at == timedelta(hours=1)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--owner", "nobody", "--server", "demo"], "No active user"),
        (["--owner", "alice", "--server", "nope"], "Unknown server"),
        (["--owner", "alice", "--server", "demo", "--ttl", "never"], "never expire"),
        (["--owner", "alice", "--server", "demo", "--ttl", "1000d"], "maximum"),
        (["--owner", "alice", "--server", "demo", "--ttl", "soon"], "ttl"),
        (["--owner", "alice", "--server", "demo", "--tools", "files:echo"], "not in the token"),
        # An empty list (e.g. an unset shell variable) must not widen the token to every tool.
        (["--owner", "alice", "--server", "demo", "--tools", ",,,"], "names no tool"),
        (["--owner", "alice", "--server", "demo", "--tools", ""], "names no tool"),
        (["--owner", "alice", "--server", "demo", "--tools", "echo add"], "separate tools with commas"),
    ],
)
def test_issue_token_errors_are_clear_and_issue_nothing(servers, user, args, message):
    with pytest.raises(CommandError, match=message):
        run("issue_token", "--name", "ci", *args)
    assert not Token.objects.exists()


def test_issue_token_never_is_allowed_only_when_settings_allow_it(servers, user, settings):
    settings.TOKEN_ALLOW_NEVER_EXPIRES = True
    secret = last_line(run("issue_token", "--name", "ci", "--owner", user.username, "--server", "demo",
                           "--ttl", "never"))
    assert authenticate_token(raw_token=secret).expires_at is None


def test_issue_token_refuses_a_disabled_server(servers, user):
    UpstreamServer.objects.filter(name="demo").update(enabled=False)
    with pytest.raises(CommandError, match="disabled"):
        run("issue_token", "--name", "ci", "--owner", user.username, "--server", "demo")


# --- revoke_token / rotate_token ------------------------------------------------------------


def test_revoke_token_by_display_prefix(make_token):
    issued = make_token()
    output = run("revoke_token", issued.token.display_prefix, "--reason", "left the team")
    assert issued.token.display_prefix in output
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=issued.secret)
    assert Token.objects.get(pk=issued.token.pk).revoke_reason == "left the team"


@pytest.mark.parametrize("form", ["jti", "prefix_with_ellipsis", "bare_prefix"])
def test_revoke_token_accepts_jti_and_prefix_forms(make_token, form):
    issued = make_token()
    jti = issued.token.jti
    reference = {"jti": jti, "prefix_with_ellipsis": f"gth_{jti[:8]}…", "bare_prefix": jti[:8]}[form]
    run("revoke_token", reference)
    assert Token.objects.get(pk=issued.token.pk).status == Token.Status.REVOKED


def test_revoke_token_with_an_ambiguous_prefix_fails_and_revokes_nothing(make_token):
    first = make_token(name="one")
    second = make_token(name="two")
    Token.objects.filter(pk=first.token.pk).update(jti="abcd1234" + "0" * 24)
    Token.objects.filter(pk=second.token.pk).update(jti="abcd1234" + "1" * 24)
    with pytest.raises(CommandError, match="more than one token"):
        run("revoke_token", "gth_abcd1234")
    assert not Token.objects.filter(status=Token.Status.REVOKED).exists()


def test_revoke_token_unknown_reference_fails(db):
    with pytest.raises(CommandError, match="No token matches"):
        run("revoke_token", "gth_deadbeef")


def test_revoke_token_twice_fails(make_token):
    issued = make_token()
    run("revoke_token", issued.token.jti)
    with pytest.raises(CommandError, match="already revoked"):
        run("revoke_token", issued.token.jti)


def test_rotate_token_prints_the_successor_last_and_honours_grace(make_token):
    issued = make_token({"demo": ["echo"]})
    output = run("rotate_token", issued.token.jti, "--grace", "10m")
    successor = last_line(output)
    assert successor.startswith("gth_") and successor != issued.secret
    assert authenticate_token(raw_token=successor).scope.to_mapping() == {"demo": ["echo"]}
    assert authenticate_token(raw_token=issued.secret)  # still in grace
    old = Token.objects.get(pk=issued.token.pk)
    assert old.grace_until > timezone.now() + timedelta(minutes=9)


def test_rotate_token_without_grace_refuses_the_old_token_now(make_token):
    issued = make_token()
    run("rotate_token", issued.token.display_prefix)
    with pytest.raises(TokenRevoked):
        authenticate_token(raw_token=issued.secret)


def test_rotate_token_refuses_never_as_grace(make_token):
    issued = make_token()
    with pytest.raises(CommandError):
        run("rotate_token", issued.token.jti, "--grace", "never")
    assert Token.objects.get(pk=issued.token.pk).status == Token.Status.ACTIVE


# --- signing keys ---------------------------------------------------------------------------


def test_rotate_signing_key_keeps_old_tokens_working(make_token):
    issued = make_token()
    output = run("rotate_signing_key")
    active = SigningKey.objects.get(status=SigningKey.Status.ACTIVE)
    assert active.kid in output
    assert authenticate_token(raw_token=issued.secret)


def test_prune_signing_keys_reports_what_it_pruned(make_token):
    issued = make_token()
    run("rotate_signing_key")
    assert "Pruned 0" in run("prune_signing_keys")
    run("revoke_token", issued.token.jti)
    assert "Pruned 0" in run("prune_signing_keys")  # its identity assertions may still be about
    SigningKey.objects.filter(status=SigningKey.Status.RETIRED).update(
        retired_at=timezone.now() - timedelta(hours=1)
    )
    assert "Pruned 1" in run("prune_signing_keys")


# --- as a script would run them -------------------------------------------------------------


def _manage(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=subprocess_env(), capture_output=True,
        text=True, timeout=120,
    )


@pytest.mark.integration
def test_scripts_can_capture_the_token_from_the_last_stdout_line(transactional_db, user):
    assert _manage("add_server", "demo", "http://127.0.0.1:9/mcp").returncode == 0
    issued = _manage(
        "issue_token", "--name", "ci", "--owner", user.username, "--server", "demo", "--ttl", "1h"
    )
    assert issued.returncode == 0, issued.stderr
    secret = issued.stdout.rstrip("\n").splitlines()[-1]
    assert secret.startswith("gth_") and secret.count(".") == 2
    assert authenticate_token(raw_token=secret)
    assert secret not in issued.stderr

    rotated = _manage("rotate_token", Token.objects.get().display_prefix, "--grace", "1m")
    assert rotated.returncode == 0, rotated.stderr
    successor = rotated.stdout.rstrip("\n").splitlines()[-1]
    assert authenticate_token(raw_token=successor)


@pytest.mark.integration
def test_command_errors_go_to_stderr_with_a_non_zero_exit(transactional_db, user):
    result = _manage("issue_token", "--name", "ci", "--owner", user.username, "--server", "nope")
    assert result.returncode != 0
    assert "Unknown server" in result.stderr
    assert "gth_" not in result.stdout
