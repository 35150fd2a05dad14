"""record_later(): the gateway's non-blocking, batched path, and what happens at shutdown."""

from __future__ import annotations

import subprocess
import sys
import threading

import httpx
import pytest
from django.db import OperationalError

from audit.batching import BatchWriter
from audit.exceptions import InvalidAuditEvent
from audit.integrity import verify_chain
from audit.models import AuditEvent
from audit.services import flush_pending, record_later
from tests.support.processes import REPO_ROOT, free_port, running, subprocess_env


def test_queueing_touches_no_database_in_the_caller(transactional_db, django_assert_num_queries):
    with django_assert_num_queries(0):
        for i in range(20):
            record_later(event="mcp.request", server="demo", detail={"i": i})
    assert flush_pending(timeout=10)
    assert AuditEvent.objects.filter(event="mcp.request").count() == 20


def test_queued_events_keep_their_order_and_a_valid_chain(transactional_db):
    for i in range(30):
        record_later(event="mcp.tool_call", tool="echo", detail={"i": i})
    assert flush_pending(timeout=10)
    assert list(AuditEvent.objects.order_by("id").values_list("detail__i", flat=True)) == list(range(30))
    assert verify_chain().ok


def test_bad_arguments_fail_in_the_caller_not_in_the_writer(transactional_db):
    with pytest.raises(InvalidAuditEvent):
        record_later(event="mcp.request", outcome="sort-of")
    with pytest.raises(InvalidAuditEvent):
        record_later(event="")
    with pytest.raises(TypeError):
        record_later(event="mcp.request", colour="blue")


EXITING_SCRIPT = """
import os, django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
django.setup()
from audit.services import record_later
for i in range(40):
    record_later(event="mcp.request", actor="exiting", detail={"i": i})
# no flush: the interpreter exits normally with everything still queued
"""


@pytest.mark.integration
def test_queued_events_are_written_when_the_process_exits(transactional_db):
    env = subprocess_env({"GATEHOUSE_AUDIT_BATCH_SECONDS": "300"})
    result = subprocess.run([sys.executable, "-c", EXITING_SCRIPT], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    assert AuditEvent.objects.filter(actor="exiting").count() == 40
    assert verify_chain().ok


@pytest.mark.integration
def test_daphne_flushes_queued_events_on_sigterm(transactional_db, tmp_path):
    port = free_port()
    env = subprocess_env({"GATEHOUSE_AUDIT_BATCH_SECONDS": "300"})
    args = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
            "tests.audit.asgi_probe:application"]
    log = tmp_path / "daphne.log"
    with running(args, env=env, ready_url=f"http://127.0.0.1:{port}/health", log_path=log) as proc:
        for i in range(25):
            assert httpx.get(f"http://127.0.0.1:{port}/mcp/demo/{i}").status_code == 200
    assert proc.returncode == 0, log.read_text()
    assert AuditEvent.objects.filter(actor="probe").count() == 25
    assert verify_chain().ok


# --- the batching machinery itself ------------------------------------------------------------


def _writer(**kwargs) -> tuple[BatchWriter, list[tuple[list, int]]]:
    written: list[tuple[list, int]] = []
    kwargs.setdefault("write", lambda batch, dropped: written.append((list(batch), dropped)))
    return BatchWriter(interval=lambda: 0.05, **kwargs), written


def test_events_beyond_the_queue_limit_are_counted_and_reported():
    release = threading.Event()
    written: list[tuple[list, int]] = []

    def slow_write(batch, dropped):
        release.wait(10)
        written.append((list(batch), dropped))

    writer, _ = _writer(write=slow_write, max_batch=2, max_queue=3)
    results = [writer.submit({"i": i}) for i in range(8)]
    release.set()
    assert writer.flush(timeout=10)
    assert results.count(False) >= 3
    delivered = [item["i"] for batch, _ in written for item in batch]
    reported = sum(dropped for _, dropped in written)
    assert len(delivered) + reported == 8


def test_a_database_outage_is_retried_until_the_batch_is_written():
    attempts = []

    def flaky(batch, dropped):
        attempts.append(len(batch))
        if len(attempts) < 3:
            raise OperationalError("database is down")

    writer, _ = _writer(write=flaky, retry_on=(OperationalError,))
    writer.submit({"i": 1})
    assert writer.flush(timeout=30)
    assert attempts == [1, 1, 1]


def test_flush_reports_false_when_the_queue_cannot_drain_in_time():
    blocked = threading.Event()
    writer, _ = _writer(write=lambda batch, dropped: blocked.wait(5))
    writer.submit({"i": 1})
    assert writer.flush(timeout=0.2) is False
    blocked.set()
    assert writer.flush(timeout=10)


def test_dropped_events_leave_an_audit_dropped_event(transactional_db):
    from audit.services import _write_batch

    _write_batch([{"event": "mcp.request", "detail": {"i": 1}}], 7)
    dropped = AuditEvent.objects.get(event="audit.dropped")
    assert dropped.outcome == "error"
    assert dropped.detail["dropped"] == 7
