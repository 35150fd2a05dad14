"""An admin who ends a session while its upstream struggles: ours ends now, a worker tells upstream later."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from audit import events
from audit.models import AuditEvent
from gateway.models import SessionBinding, SessionEndOutbox
from tests.celery.conftest import wait_until
from tests.factories import StaffUserFactory
from tests.support.processes import free_port, running, serve_args
from tests.support.recording_upstream import recording_upstream
from tests.support.sessions import make_session
from tokens.api_keys import create_api_key
from upstreams.models import UpstreamServer

pytestmark = pytest.mark.integration


def test_terminate_through_the_api_while_upstream_fails_is_retried_by_a_worker(
    start_worker, celery_env, make_token, tmp_path
):
    with recording_upstream() as upstream:
        upstream.delete_status = 503
        server = UpstreamServer.objects.create(name="demo", url=upstream.url)
        session = make_session(token=make_token({"demo": None}).token, server=server)
        key = create_api_key(
            name="ops", owner=StaffUserFactory(), scope_ceiling=None, max_ttl=timedelta(hours=1),
            actor="tests",
        )
        start_worker()
        port = free_port()
        with running(
            serve_args(port), env=celery_env(), ready_url=f"http://127.0.0.1:{port}/health",
            log_path=tmp_path / "daphne.log",
        ):
            response = httpx.delete(
                f"http://127.0.0.1:{port}/api/v1/sessions/{session.pk}/",
                headers={"Authorization": f"Bearer {key.secret}"}, timeout=30,
            )
        assert response.status_code == 204
        session.refresh_from_db()
        assert session.status == SessionBinding.Status.TERMINATED
        assert upstream.deleted_session_ids()[0] == session.upstream_session_id  # the attempt that failed
        event = AuditEvent.objects.get(event=events.SESSION_TERMINATED, session_id=session.pk)
        assert event.detail["upstream_delete"] == "queued"
        assert SessionEndOutbox.objects.get(session=session).done_at is None  # owed, backing off

        upstream.delete_status = 200
        wait_until(
            lambda: len(upstream.deleted_session_ids()) >= 2, timeout=60, what="the worker's retried DELETE"
        )
        assert set(upstream.deleted_session_ids()) == {session.upstream_session_id}
        wait_until(
            lambda: SessionEndOutbox.objects.filter(session=session, done_at__isnull=False).exists(),
            what="the outbox row to be marked done",
        )
