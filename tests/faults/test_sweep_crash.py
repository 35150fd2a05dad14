"""A Celery worker is killed (``kill -9``) in the middle of a session sweep.

The fault: a token with open sessions is revoked; the worker's sweep commits its first batch of
ended sessions and is killed while it tells the upstream, one DELETE at a time.

What the client sees: nothing new; its sessions were already refused from the moment the token
was revoked (the gateway re-checks the token on every request and open stream).

Recovery: the next worker's first sweep (every ``GATEHOUSE_SWEEP_SECONDS``) finishes the job. No
audit event is lost: each ``session.expired`` committed with its session's status, in the killed
worker's batch transaction, and none is written twice. Every upstream DELETE is sent from the
outbox until answered: the one the killed worker had in flight is sent again once its lease runs
out (at least once; the upstream sees it twice, answered once), the others exactly once.
``verify_audit`` accepts the chain. No revoked token is accepted at any point.
"""

from __future__ import annotations

from collections import Counter

import pytest
from django.core.management import call_command

from audit import events
from audit.models import AuditEvent
from gateway.models import SessionBinding, SessionEndOutbox
from tests.faults.conftest import wait_until
from tests.support.recording_upstream import recording_upstream
from tests.support.sessions import make_session
from tokens.services import revoke_token
from upstreams.models import UpstreamServer

pytestmark = pytest.mark.integration

SESSIONS = 30
BATCH = 20  # the first batch commits, the rest is still active when the worker dies
WORKER_ENV = {
    "GATEHOUSE_SWEEP_BATCH_SIZE": str(BATCH),
    # The lease on an outbox row in flight is 4 x this + 5 s: the resend comes after ~9 s.
    "GATEHOUSE_UPSTREAM_TIMEOUT_SECONDS": "1",
}


def test_a_worker_killed_mid_sweep_loses_no_audit_event_and_no_upstream_delete(workers, make_token):
    with recording_upstream() as upstream:
        server = UpstreamServer.objects.create(name="demo", url=upstream.url)
        token = make_token({"demo": None}).token
        sessions = [make_session(token=token, server=server) for _ in range(SESSIONS)]
        upstream_ids = {s.pk: s.upstream_session_id for s in sessions}
        upstream.hold_deletes()
        revoke_token(token=token, actor="tests")

        first = workers.start(env=WORKER_ENV)
        # A DELETE reaches the upstream only after its batch committed: kill the worker there.
        wait_until(lambda: upstream.arrived, timeout=60, what="the first upstream DELETE")
        first.kill()
        ended_by_the_first = SessionBinding.objects.exclude(status=SessionBinding.Status.ACTIVE).count()
        upstream.release_deletes()
        assert ended_by_the_first >= 1

        workers.start(env=WORKER_ENV)
        wait_until(
            lambda: len(upstream.deletes) >= SESSIONS, timeout=60, what="every upstream DELETE answered"
        )
        wait_until(
            lambda: not SessionEndOutbox.objects.filter(done_at__isnull=True).exists(),
            what="the outbox to drain",
        )

        assert not SessionBinding.objects.filter(status=SessionBinding.Status.ACTIVE).exists()
        assert set(SessionBinding.objects.values_list("status", flat=True)) == {SessionBinding.Status.REVOKED}
        audited = Counter(
            AuditEvent.objects.filter(event=events.SESSION_EXPIRED).values_list("session_id", flat=True)
        )
        assert audited == Counter(upstream_ids.keys())  # every session once, none twice
        answered = Counter(upstream.deleted_session_ids())
        assert answered == Counter(upstream_ids.values())  # one answered DELETE each
        # The DELETE in flight when the worker died was sent again: at least once, honestly.
        assert len(upstream.abandoned) == 1
        assert Counter(upstream.arrived) == answered + Counter(upstream.abandoned)
        print(f"first worker ended {ended_by_the_first} sessions before it was killed")
    call_command("verify_audit")
