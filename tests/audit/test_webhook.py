"""The audit webhook: every event reaches the SIEM once, in order, signed, even across an outage.

The receiver is a real HTTP server in the test process that verifies each signature as
docs/operations.md tells receivers to; delivery runs are the service the Celery task calls
(tests/celery has the worker-driven run).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from django.core.exceptions import ImproperlyConfigured

from audit.models import AuditEvent
from audit.services import record
from audit.webhook import deliver_audit_webhook, webhook_status
from tests.support.polling import eventually
from tests.support.processes import free_port
from tests.support.siem_receiver import Receiver

SECRET = "siem-shared-secret-42"


@pytest.fixture
def receiver(settings) -> Iterator[Receiver]:
    found = Receiver(free_port(), secret=SECRET)
    settings.AUDIT_WEBHOOK_URL = found.url
    settings.AUDIT_WEBHOOK_SECRET = SECRET
    settings.AUDIT_WEBHOOK_SECONDS = 0.05  # the first retry waits this long, then doubles
    settings.AUDIT_WEBHOOK_MAX_BACKOFF_SECONDS = 0.2
    yield found
    found.stop()


def write_events(count: int, tag: str) -> None:
    for i in range(count):
        record(event="token.issued", actor=f"tests-{tag}", detail={"n": i})


def until_delivered(*, timeout: float = 10.0) -> None:
    """Run delivery (as beat would, every interval) until nothing is left or it times out."""
    def delivered() -> bool:
        deliver_audit_webhook()
        return webhook_status().pending == 0

    eventually(delivered, timeout=timeout, every=0.05,
               what=lambda: f"delivery; still pending: {webhook_status()}")


def assert_exactly_the_chain(receiver: Receiver) -> None:
    rows = list(AuditEvent.objects.order_by("id"))
    assert [e["id"] for e in receiver.accepted] == [row.pk for row in rows]
    for event, row in zip(receiver.accepted, rows, strict=True):
        assert (event["hash"], event["prev_hash"], event["event"]) == (row.hash, row.prev_hash, row.event)
    assert receiver.bad_signatures == 0


@pytest.mark.django_db(transaction=True)
def test_a_receiver_that_was_down_gets_every_event_once_in_order_when_it_is_back(receiver, settings):
    # A backoff long enough that the "waiting" check below cannot outlast it on a loaded machine.
    settings.AUDIT_WEBHOOK_SECONDS = settings.AUDIT_WEBHOOK_MAX_BACKOFF_SECONDS = 1.0
    write_events(5, "before")
    first = deliver_audit_webhook()  # nobody listens yet
    assert (first.outcome, first.delivered) == ("failed", 0)
    down = webhook_status()
    assert down.pending == 5 and down.failing_since is not None
    assert down.last_error == "ConnectError"
    assert receiver.url not in down.last_error
    assert deliver_audit_webhook().outcome == "waiting"  # backoff: no hammering a dead receiver

    write_events(3, "during")
    time.sleep(1.1)
    assert deliver_audit_webhook().outcome == "failed"  # still down, after its backoff
    assert webhook_status().pending == 8

    receiver.start()
    until_delivered()
    write_events(2, "after")
    until_delivered()

    assert_exactly_the_chain(receiver)
    up = webhook_status()
    assert (up.pending, up.failing_since, up.last_error) == (0, None, "")
    assert up.delivered_id == AuditEvent.objects.order_by("-id").first().pk


@pytest.mark.django_db(transaction=True)
def test_an_event_answered_500_is_sent_again_and_accepted_once(receiver):
    receiver.start()
    receiver.script = [500, 503]
    write_events(3, "flaky")
    until_delivered()
    assert receiver.attempts == 5  # two refusals of the first event, then three acceptances
    assert_exactly_the_chain(receiver)


@pytest.mark.django_db(transaction=True)
def test_concurrent_delivery_runs_never_send_an_event_twice(receiver):
    receiver.start()
    write_events(30, "busy")
    runs = [threading.Thread(target=until_delivered) for _ in range(3)]
    for run in runs:
        run.start()
    for run in runs:
        run.join()
    assert receiver.attempts == 30
    assert_exactly_the_chain(receiver)


@pytest.mark.django_db(transaction=True)
def test_a_wrong_secret_shows_as_a_failing_delivery_in_the_console(receiver, settings, staff_client):
    receiver.start()
    settings.AUDIT_WEBHOOK_SECRET = "not-the-shared-one"
    write_events(1, "wrong")
    assert deliver_audit_webhook().outcome == "failed"
    assert receiver.bad_signatures == 1 and receiver.accepted == []
    page = staff_client.get("/console/audit/").content.decode()
    assert "Audit webhook" in page and "HTTP 401" in page
    assert "not-the-shared-one" not in page and receiver.url not in page


@pytest.mark.integration
def test_a_webhook_url_without_a_secret_stops_start_up(tmp_path):
    import subprocess
    import sys

    from tests.support.processes import REPO_ROOT, subprocess_env

    env = subprocess_env({"GATEHOUSE_AUDIT_WEBHOOK_URL": "https://siem.example/ingest",
                          "GATEHOUSE_AUDIT_WEBHOOK_SECRET": ""})
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "GATEHOUSE_AUDIT_WEBHOOK_SECRET is required" in done.stderr
    assert ImproperlyConfigured.__name__ in done.stderr
