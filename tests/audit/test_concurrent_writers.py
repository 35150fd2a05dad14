"""The chain stays intact when several processes and threads append at the same moment."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections import Counter

import pytest
from django.db import connection

from audit.integrity import verify_chain
from audit.models import AuditEvent
from audit.services import flush_pending, record, record_later
from tests.support.processes import REPO_ROOT, subprocess_env

WRITER = """
import os, sys, time
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
django.setup()
from audit.services import flush_pending, record, record_later
name, count, ready, go = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
open(ready, "w").close()
while not os.path.exists(go):
    time.sleep(0.01)
for i in range(count):
    if i % 2:
        record(event="token.issued", actor=name, detail={"i": i})
    else:
        record_later(event="mcp.request", actor=name, detail={"i": i})
assert flush_pending(timeout=60), "queued events were not written"
"""

PROCESSES = 4
EVENTS_PER_PROCESS = 60
THREADS = 3
EVENTS_PER_THREAD = 20


def _thread_writer(name: str, go: threading.Event) -> None:
    go.wait()
    try:
        for i in range(EVENTS_PER_THREAD):
            record(event="console.login", actor=name, detail={"i": i})
    finally:
        connection.close()


@pytest.mark.integration
def test_processes_and_threads_writing_at_once_keep_one_valid_chain(transactional_db, tmp_path):
    go_file = tmp_path / "go"
    env = subprocess_env()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, f"proc-{n}", str(EVENTS_PER_PROCESS), str(tmp_path / f"ready-{n}"),
             str(go_file)],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for n in range(PROCESSES)
    ]
    go = threading.Event()
    threads = [threading.Thread(target=_thread_writer, args=(f"thread-{n}", go)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"ready-{n}").exists() for n in range(PROCESSES)):
        assert time.monotonic() < deadline, "writer processes did not start"
        time.sleep(0.05)
    go_file.touch()
    go.set()
    for thread in threads:
        thread.join(timeout=120)
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()

    # Only this test's writers: a live gateway of an earlier test may still be flushing its batch.
    all_actors = AuditEvent.objects.values_list("actor", flat=True)
    actors = Counter(actor for actor in all_actors if actor.startswith(("proc-", "thread-")))
    assert actors == {
        **{f"proc-{n}": EVENTS_PER_PROCESS for n in range(PROCESSES)},
        **{f"thread-{n}": EVENTS_PER_THREAD for n in range(THREADS)},
    }
    report = verify_chain()
    assert report.ok, report.broken
    assert report.count == AuditEvent.objects.count()


def test_queued_events_from_many_threads_form_one_valid_chain(transactional_db):
    def enqueue(name: str) -> None:
        for i in range(100):
            record_later(event="mcp.request", actor=name, detail={"i": i})

    threads = [threading.Thread(target=enqueue, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert flush_pending(timeout=30)
    assert AuditEvent.objects.count() == 400
    assert verify_chain().ok
