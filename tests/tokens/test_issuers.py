"""Trusted issuers: ``add_issuer`` reads discovery from the real provider and refuses what is unsafe;
the console manages them (staff) and shows them (auditors)."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from audit.models import AuditEvent
from tests.factories import UpstreamServerFactory
from tests.support.issuers import CI_CLIENT
from tokens.models import TrustedIssuer

pytestmark = [pytest.mark.django_db, pytest.mark.integration]


@pytest.fixture
def servers(db):
    return [UpstreamServerFactory(name="demo"), UpstreamServerFactory(name="files")]


def add_issuer(*args: str) -> str:
    import io

    out = io.StringIO()
    call_command("add_issuer", *args, stdout=out)
    return out.getvalue()


def test_add_issuer_discovers_the_key_set_and_audits(ci_provider, servers):
    out = add_issuer("gha", "--issuer", ci_provider.issuer, "--audience", CI_CLIENT[0],
                     "--servers", "demo,files", "--tools", "echo", "--rule", "repository=acme/app",
                     "--rule", "ref=refs/heads/main", "--max-ttl", "15m", "--direct")
    assert "Trusting gha" in out and "direct use allowed" in out
    issuer = TrustedIssuer.objects.get(name="gha")
    assert issuer.jwks_uri.startswith(ci_provider.url)
    assert issuer.scope == {"demo": ["echo"], "files": ["echo"]}
    assert issuer.rules == [["repository", "acme/app"], ["ref", "refs/heads/main"]]
    assert issuer.max_ttl_seconds == 900 and issuer.algorithms == ["RS256", "ES256"]
    created = AuditEvent.objects.get(event="issuer.created")
    assert created.detail["issuer"] == ci_provider.issuer and created.detail["direct"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--issuer", "http://idp.example.com/o"], "must be https"),
        (["--algorithms", "HS256"], "never none or HS"),
        (["--algorithms", "none"], "never none or HS"),
        (["--servers", "nope"], "Unknown server"),
        (["--rule", "repository"], "CLAIM=VALUE"),
        (["--max-ttl", "never"], "cannot be 'never'"),
    ],
)
def test_add_issuer_refuses_what_is_unsafe_or_wrong(ci_provider, servers, args, message):
    base = {"--issuer": ci_provider.issuer, "--audience": CI_CLIENT[0], "--servers": "demo"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    with pytest.raises(CommandError, match=message):
        add_issuer("gha", *[part for pair in base.items() for part in pair])
    assert not TrustedIssuer.objects.exists()


def test_an_issuer_whose_discovery_names_someone_else_is_not_trusted(ci_provider, servers):
    # The provider's discovery names ISSUER exactly; the same host under another path does not.
    with pytest.raises(CommandError, match="Discovery failed"):
        add_issuer("gha", "--issuer", ci_provider.url, "--audience", CI_CLIENT[0], "--servers", "demo")
    with pytest.raises(CommandError, match="Discovery failed"):
        add_issuer("gha", "--issuer", "http://127.0.0.1:9/o", "--audience", CI_CLIENT[0], "--servers", "demo")


def test_staff_add_an_issuer_in_the_console_and_auditors_only_read(
    ci_provider, servers, staff_client, auditor_client
):
    form = {"name": "gha", "issuer": ci_provider.issuer, "audience": CI_CLIENT[0], "servers": "demo",
            "tools": "", "rules": "repository=acme/app\nref=refs/heads/main", "max_ttl": "1h",
            "algorithms": ["RS256"]}
    assert auditor_client.post("/console/issuers/new/", form).status_code == 403
    response = staff_client.post("/console/issuers/new/", form)
    assert response.status_code == 302 and response["Location"] == "/console/issuers/gha/"
    page = auditor_client.get("/console/issuers/gha/").content.decode()
    assert ci_provider.issuer in page and "repository=acme/app" in page and "Revoke subject" not in page
    assert "gha" in auditor_client.get("/console/issuers/").content.decode()

    dev = "repo:acme/app:ref:refs/heads/dev"
    cut = staff_client.post("/console/issuers/gha/revoke-subject/", {"subject": dev})
    assert cut.status_code == 302
    detail = staff_client.get("/console/issuers/gha/").content.decode()
    assert "repo:acme/app:ref:refs/heads/dev" in detail and "Restore" in detail
    assert staff_client.post("/console/issuers/gha/disable/").status_code == 302
    assert TrustedIssuer.objects.get(name="gha").enabled is False
    assert staff_client.post("/console/issuers/gha/delete/").status_code == 302
    assert not TrustedIssuer.objects.exists()
    assert AuditEvent.objects.filter(event__in=["issuer.created", "subject.revoked", "issuer.updated",
                                               "issuer.deleted"]).count() == 4
