"""Every committed event is also one JSON line on the process's stdout."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from audit.models import AuditEvent
from tests.support.processes import REPO_ROOT, subprocess_env

pytestmark = pytest.mark.integration

SCRIPT = """
import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
django.setup()
from audit.services import record
record(event="token.revoked", actor="root-admin", token_jti="ab" * 16, detail={"reason": "lost laptop"})
"""


def test_an_event_is_one_json_line_on_stdout(transactional_db):
    result = subprocess.run([sys.executable, "-c", SCRIPT], cwd=REPO_ROOT, env=subprocess_env(),
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    audit_lines = [line for line in lines if line.get("logger") == "gatehouse.audit"]
    assert len(audit_lines) == 1
    line = audit_lines[0]
    row = AuditEvent.objects.get(event="token.revoked")
    assert line["message"] == "token.revoked"
    assert line["audit"]["id"] == row.pk
    assert line["audit"]["hash"] == row.hash
    assert line["audit"]["token"] == "gth_abababab…"
    assert line["audit"]["detail"] == {"reason": "lost laptop"}


def test_a_rolled_back_event_is_not_logged(transactional_db):
    script = SCRIPT.replace(
        'record(event="token.revoked"',
        'from django.db import transaction\n'
        'try:\n'
        '    with transaction.atomic():\n'
        '        record(event="token.revoked"',
    ).rstrip() + "\n        raise RuntimeError\nexcept RuntimeError:\n    pass\n"
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, env=subprocess_env(),
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert "gatehouse.audit" not in result.stdout
    assert not AuditEvent.objects.exists()
