"""manage.py verify_audit: OK with the count, or the first broken event and a non-zero exit."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from audit.chain import GENESIS_HASH, compute_hash
from audit.models import AuditEvent
from tests.support.processes import REPO_ROOT, subprocess_env


@pytest.fixture
def chain(make_event):
    """Five events: a short but real chain."""
    return [
        make_event(event="token.issued", actor="root-admin", token_jti="a" * 32, detail={"n": 1}),
        make_event(event="mcp.request", token_jti="a" * 32, server="demo", detail={"n": 2}),
        make_event(event="mcp.tool_call", token_jti="a" * 32, server="demo", tool="echo", detail={"n": 3}),
        make_event(event="auth.denied", outcome="denied", status=401, detail={"n": 4}),
        make_event(event="token.revoked", actor="root-admin", token_jti="a" * 32, detail={"n": 5}),
    ]


def _sql(statement: str, params: list | None = None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement, params or [])


def _insert_raw(*, pk: int, event: str, prev_hash: str, created_at, detail: str = "{}", digest: str) -> None:
    _sql(
        "INSERT INTO audit_auditevent (id, created_at, event, actor, token_jti, owner, server, tool, "
        "session_id, client_ip, user_agent, outcome, status, latency_ms, detail, prev_hash, hash) "
        "VALUES (%s, %s, %s, '', '', '', '', '', '', NULL, '', 'success', NULL, NULL, %s, %s, %s)",
        [pk, created_at, event, detail, prev_hash, digest],
    )


def _verify() -> str:
    out = io.StringIO()
    call_command("verify_audit", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def _broken() -> str:
    with pytest.raises(CommandError) as failure:
        _verify()
    return str(failure.value)


def _forged_fields(pk: int, event: str, created_at) -> dict:
    return {"created_at": created_at, "event": event, "actor": "", "token_jti": "", "owner": "", "server": "",
            "tool": "", "session_id": "", "client_ip": None, "user_agent": "", "outcome": "success",
            "status": None, "latency_ms": None, "detail": {}}


def test_intact_chain_is_ok_with_its_count(chain):
    output = _verify()
    assert output.startswith(f"OK: 5 events verified (#{chain[0].pk}..#{chain[-1].pk})")
    assert chain[-1].hash in output


def test_empty_log_is_ok(db):
    assert _verify().startswith("OK: the audit log is empty")


def test_edited_detail_names_the_event(chain):
    _sql("UPDATE audit_auditevent SET detail = %s WHERE id = %s", ['{"n": 30}', chain[2].pk])
    message = _broken()
    assert f"event #{chain[2].pk} (mcp.tool_call)" in message
    assert "content does not match its hash" in message


def test_edited_column_names_the_event(chain):
    _sql("UPDATE audit_auditevent SET outcome = 'success', status = 200 WHERE id = %s", [chain[3].pk])
    assert f"event #{chain[3].pk} (auth.denied)" in _broken()


def test_edited_time_names_the_event(chain):
    _sql("UPDATE audit_auditevent SET created_at = %s WHERE id = %s",
         [chain[1].created_at.replace(year=2020), chain[1].pk])
    assert f"event #{chain[1].pk}" in _broken()


def test_edit_with_recomputed_hash_breaks_the_next_link(chain):
    victim = AuditEvent.objects.get(pk=chain[1].pk)
    fields = {name: getattr(victim, name) for name in ("created_at", "event", "actor", "token_jti", "owner",
              "server", "tool", "session_id", "client_ip", "user_agent", "outcome", "status", "latency_ms")}
    fields["detail"] = {"n": 200}
    forged = compute_hash(prev_hash=victim.prev_hash, fields=fields)
    _sql("UPDATE audit_auditevent SET detail = %s, hash = %s WHERE id = %s",
         ['{"n": 200}', forged, victim.pk])
    message = _broken()
    assert f"event #{chain[2].pk}" in message
    assert "prev_hash does not match" in message


def test_deleted_middle_event_is_found(chain):
    _sql("DELETE FROM audit_auditevent WHERE id = %s", [chain[2].pk])
    message = _broken()
    assert f"event #{chain[3].pk} (auth.denied)" in message
    assert f"between #{chain[1].pk} and #{chain[3].pk}" in message


def test_deleted_first_event_is_found(chain):
    _sql("DELETE FROM audit_auditevent WHERE id = %s", [chain[0].pk])
    message = _broken()
    assert f"event #{chain[1].pk}" in message
    assert "deleted from the start" in message


def test_inserted_event_with_a_made_up_hash_is_found(chain):
    _sql("UPDATE audit_auditevent SET id = id + 100 WHERE id > %s", [chain[1].pk])
    assert _verify().startswith("OK: 5 events")  # renumbering alone changes no content
    _insert_raw(pk=chain[1].pk + 1, event="token.issued", prev_hash=chain[1].hash,
                created_at=chain[1].created_at, digest="f" * 64)
    assert f"event #{chain[1].pk + 1} (token.issued)" in _broken()


def test_inserted_event_with_a_valid_hash_breaks_the_next_link(chain):
    _sql("UPDATE audit_auditevent SET id = id + 100 WHERE id > %s", [chain[1].pk])
    forged = compute_hash(prev_hash=chain[1].hash,
                          fields=_forged_fields(chain[1].pk + 1, "token.issued", chain[1].created_at))
    _insert_raw(pk=chain[1].pk + 1, event="token.issued", prev_hash=chain[1].hash,
                created_at=chain[1].created_at, digest=forged)
    message = _broken()
    assert f"event #{chain[2].pk + 100} (mcp.tool_call)" in message
    assert "prev_hash does not match" in message


def test_event_inserted_before_the_first_is_found(chain):
    fields = _forged_fields(0, "token.issued", chain[0].created_at)
    _insert_raw(pk=chain[0].pk - 1 if chain[0].pk > 1 else 0, event="token.issued", prev_hash=GENESIS_HASH,
                created_at=chain[0].created_at, digest=compute_hash(prev_hash=GENESIS_HASH, fields=fields))
    assert f"event #{chain[0].pk} (token.issued)" in _broken()


def test_cut_tail_is_found_with_an_anchor(chain):
    anchor = f"{chain[-1].pk}:{chain[-1].hash}"
    _sql("DELETE FROM audit_auditevent WHERE id = %s", [chain[-1].pk])
    assert _verify().startswith("OK: 4 events")  # a chain alone cannot see a cut tail
    with pytest.raises(CommandError, match=f"event #{chain[-1].pk}: anchored event is missing"):
        call_command("verify_audit", "--anchor", anchor, stdout=io.StringIO(), stderr=io.StringIO())


def test_anchor_of_an_intact_chain_is_ok(chain):
    out = io.StringIO()
    call_command("verify_audit", "--anchor", f"{chain[2].pk}:{chain[2].hash}", stdout=out)
    assert out.getvalue().startswith("OK: 5 events")


@pytest.mark.integration
def test_command_exits_non_zero_and_prints_the_broken_event(transactional_db, chain):
    _sql("UPDATE audit_auditevent SET actor = 'mallory' WHERE id = %s", [chain[0].pk])
    result = subprocess.run(
        [sys.executable, "manage.py", "verify_audit"], cwd=REPO_ROOT, env=subprocess_env(),
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 1
    assert f"BROKEN at event #{chain[0].pk} (token.issued)" in result.stderr


@pytest.mark.integration
def test_command_exits_zero_and_prints_ok(transactional_db, chain):
    result = subprocess.run(
        [sys.executable, "manage.py", "verify_audit"], cwd=REPO_ROOT, env=subprocess_env(),
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 5 events verified")
