"""No secret ever reaches an audit row or its JSON log line."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection

from audit.models import AuditEvent
from audit.services import flush_pending, record, record_later
from tokens.api_keys import create_api_key


@pytest.fixture
def secrets_in_hand(make_token, user):
    issued = make_token({"demo": ["echo"]})
    api_key = create_api_key(name="ci", owner=user, scope_ceiling=None, max_ttl=timedelta(days=1),
                             actor="tests")
    return {
        "token": issued.secret,
        "bare_jwt": issued.secret.removeprefix("gth_"),
        "api_key": api_key.secret,
        "display": issued.token.display_prefix,
        "api_key_id": api_key.api_key.key_id,
    }


def _leaks(text: str, secrets: dict[str, str]) -> list[str]:
    return [name for name in ("token", "bare_jwt", "api_key") if secrets[name] in text]


def _secret_laden_event(s: dict[str, str]) -> dict:
    return {
        "event": "auth.denied",
        "actor": f"someone with {s['token']}",
        "user_agent": f"curl/8.5 Authorization: Bearer {s['token']}",
        "outcome": "denied",
        "status": 401,
        "detail": {
            "url": f"https://gw.example/mcp/demo/?key={s['token']}&x=1",
            "headers": {
                "Authorization": f"Bearer {s['token']}",
                "X-API-Key": s["api_key"],
                "authorization": "Basic dXNlcjpodW50ZXIy",
                "Cookie": "sessionid=abc123def456",
            },
            "raw": f"token={s['bare_jwt']} and key {s['api_key']}",
            "password": "hunter2",
            "nested": [{"access_token": "opaque-upstream-credential-123"}],
            "asgi": [(b"authorization", f"Bearer {s['token']}".encode())],
        },
    }


def _row_text(pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM audit_auditevent WHERE id = %s", [pk])
        return " ".join(str(value) for value in cursor.fetchone())


def test_secrets_never_reach_the_stored_row(secrets_in_hand):
    row = record(**_secret_laden_event(secrets_in_hand))
    text = _row_text(row.pk)
    assert _leaks(text, secrets_in_hand) == []
    for leftover in ("hunter2", "dXNlcjpodW50ZXIy", "abc123def456", "opaque-upstream-credential-123"):
        assert leftover not in text


def test_masked_row_still_tells_tokens_and_keys_apart(secrets_in_hand):
    row = AuditEvent.objects.get(pk=record(**_secret_laden_event(secrets_in_hand)).pk)
    assert secrets_in_hand["display"] in row.detail["headers"]["Authorization"]
    assert row.detail["headers"]["X-API-Key"] == f"gthk_{secrets_in_hand['api_key_id']}_***"
    assert f"key={secrets_in_hand['display']}…" in row.detail["url"]
    assert secrets_in_hand["display"] in row.user_agent


def test_secrets_never_reach_the_json_log_line(transactional_db, secrets_in_hand, audit_log):
    row = record(**_secret_laden_event(secrets_in_hand))
    out = audit_log.getvalue()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    audit_lines = [line for line in lines if line.get("audit", {}).get("id") == row.pk]
    assert len(audit_lines) == 1
    assert audit_lines[0]["message"] == "auth.denied"
    assert audit_lines[0]["audit"]["hash"] == row.hash
    assert _leaks(out, secrets_in_hand) == []
    assert "hunter2" not in out


def test_queued_gateway_events_are_masked_too(transactional_db, secrets_in_hand, audit_log):
    record_later(**_secret_laden_event(secrets_in_hand))
    assert flush_pending(timeout=10)
    out = audit_log.getvalue()
    row = AuditEvent.objects.filter(event="auth.denied").latest("id")
    assert _leaks(_row_text(row.pk), secrets_in_hand) == []
    assert _leaks(out, secrets_in_hand) == []
    assert f'"id": {row.pk}' in out
