"""A legacy SSE stream closes while PostgreSQL is unreachable.

The fault: a legacy HTTP+SSE client holds its event stream (the stream *is* the session); the
database goes away for its gateway instance, and the stream ends (the client leaves; the gateway
would also end it, being unable to re-check the token). Ending the session cannot be written.

What the client sees: its stream is gone; a new stream needs a new session, as always.

Recovery: the instance keeps the close and retries it every second in the background; within
about a second after the database answers again the session is ``closed``, audited once as
``session.closed``. (Were the instance to stop first, idle expiry ends the session after
``GATEHOUSE_SESSION_IDLE_SECONDS``.) No audit event is lost; no revoked token is accepted.
"""

from __future__ import annotations

import time

import httpx
import pytest
from django.core.management import call_command

from audit import events
from audit.models import AuditEvent
from gateway.models import SessionBinding
from tests.faults.conftest import POSTGRES_ONLY, wait_until

pytestmark = [pytest.mark.integration, POSTGRES_ONLY]

# Retry every 1 s, plus a reconnect: the promised bound after the database is back.
RECONCILE_BOUND = 5.0


def _status(session_id: str) -> str:
    return SessionBinding.objects.get(pk=session_id).status


def test_a_legacy_session_closed_during_an_outage_is_closed_once_the_database_returns(
    database_outage, upstream_mcp_sse, register_upstream, make_token
):
    register_upstream(name="demo-sse", url=upstream_mcp_sse, transport="sse")
    issued = make_token({"demo-sse": None}, name="legacy-outage")
    with httpx.stream("GET", f"{database_outage.url}/sse/demo-sse/", headers={"X-API-Key": issued.secret},
                      timeout=httpx.Timeout(15, read=30)) as stream:
        assert stream.status_code == 200
        lines = stream.iter_lines()
        endpoint = next(line for line in lines if line.startswith("data:"))
        session_id = endpoint.split("session_id=", 1)[1].strip()
        assert _status(session_id) == SessionBinding.Status.ACTIVE

        database_outage.proxy.cut()
    # The client left during the outage; give the gateway time to try (and fail) to end the session.
    time.sleep(2)
    assert _status(session_id) == SessionBinding.Status.ACTIVE  # it could not be written

    database_outage.proxy.restore()
    back_at = time.monotonic()
    wait_until(lambda: _status(session_id) != SessionBinding.Status.ACTIVE, timeout=RECONCILE_BOUND,
               what="the session to be closed after the database returned")
    print(f"session closed {time.monotonic() - back_at:.2f}s after the database returned")

    session = SessionBinding.objects.get(pk=session_id)
    assert (session.status, session.end_reason) == (SessionBinding.Status.CLOSED, "event stream closed")
    time.sleep(1.5)  # a retry that ran twice would show up now
    assert AuditEvent.objects.filter(event=events.SESSION_CLOSED, session_id=session_id).count() == 1
    call_command("verify_audit")
