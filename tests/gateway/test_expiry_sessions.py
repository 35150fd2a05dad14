"""Session expiry: idle and too-old sessions end on our side, upstream hears DELETE, audit says why."""

from __future__ import annotations

import threading
from datetime import timedelta
from unittest.mock import patch

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from gateway.models import SessionBinding, SessionEndOutbox
from gateway.services import SWEEP_ACTOR, expire_sessions
from gateway.sessions.outbox import DELETE_MAX_ATTEMPTS, UpstreamDeleteFailed, retry_upstream_delete
from tests.support.processes import free_port
from tests.support.recording_upstream import recording_upstream
from tests.support.sessions import make_session
from tests.support.token_states import TOKEN_STATES, Liveness, put_in_state
from tokens import crypto
from tokens.services import revoke_token
from upstreams.models import UpstreamServer


@pytest.fixture
def upstream():
    with recording_upstream() as recorder:
        yield recorder


@pytest.fixture
def server(db, upstream) -> UpstreamServer:
    return UpstreamServer.objects.create(
        name="demo",
        url=upstream.url,
        headers_encrypted=crypto.encrypt_json({"Authorization": "Bearer upstream-credential"}),
    )


@pytest.fixture
def token(make_token, server):
    return make_token({"demo": None}).token


@pytest.fixture(autouse=True)
def limits(settings):
    settings.SESSION_IDLE_SECONDS = 1800
    settings.SESSION_MAX_SECONDS = 86400


def _status(session: SessionBinding) -> str:
    session.refresh_from_db()
    return session.status


def test_idle_session_is_expired_and_upstream_gets_delete_with_its_session_id(token, server, upstream):
    session = make_session(token=token, server=server, idle=timedelta(minutes=31))

    sweep = expire_sessions()

    assert sweep.count == 1
    session.refresh_from_db()
    assert session.status == SessionBinding.Status.EXPIRED
    assert session.ended_at is not None
    assert "idle" in session.end_reason
    assert upstream.deleted_session_ids() == [session.upstream_session_id]
    received = upstream.deletes[0].headers
    assert received["authorization"] == "Bearer upstream-credential"
    assert received["mcp-protocol-version"] == "2025-06-18"


def test_expiry_is_audited_as_session_expired(token, server, upstream):
    session = make_session(token=token, server=server, idle=timedelta(hours=2))

    expire_sessions()

    event = AuditEvent.objects.get(event=events.SESSION_EXPIRED, session_id=session.pk)
    assert event.actor == SWEEP_ACTOR
    assert event.token_jti == token.jti
    assert event.server == "demo"
    assert event.owner == token.owner.username
    # The event commits with the status change, before the DELETE; the outbox row has its outcome.
    assert event.detail["upstream_delete"] == "queued"
    outbox = SessionEndOutbox.objects.get(session=session)
    assert (outbox.upstream_status, outbox.attempts) == (200, 1)
    assert outbox.done_at is not None


def test_recently_used_session_stays_active(token, server, upstream):
    session = make_session(token=token, server=server, idle=timedelta(minutes=29), age=timedelta(hours=5))

    assert expire_sessions().count == 0
    assert _status(session) == SessionBinding.Status.ACTIVE
    assert upstream.deletes == []


def test_busy_session_older_than_max_lifetime_is_expired(token, server, upstream):
    session = make_session(token=token, server=server, idle=timedelta(0), age=timedelta(hours=25))

    expire_sessions()

    session.refresh_from_db()
    assert session.status == SessionBinding.Status.EXPIRED
    assert "older than" in session.end_reason


def test_idle_limit_comes_from_settings(token, server, upstream, settings):
    settings.SESSION_IDLE_SECONDS = 5
    session = make_session(token=token, server=server, idle=timedelta(seconds=6))

    expire_sessions()

    assert _status(session) == SessionBinding.Status.EXPIRED


def test_second_sweep_does_not_delete_or_audit_again(token, server, upstream):
    make_session(token=token, server=server, idle=timedelta(hours=1))

    assert expire_sessions().count == 1
    assert expire_sessions().count == 0
    assert len(upstream.deletes) == 1
    assert AuditEvent.objects.filter(event=events.SESSION_EXPIRED).count() == 1


def test_ended_sessions_are_not_touched(token, server, upstream):
    session = make_session(token=token, server=server, idle=timedelta(hours=1))
    SessionBinding.objects.filter(pk=session.pk).update(
        status=SessionBinding.Status.CLOSED, ended_at=session.last_seen_at
    )

    assert expire_sessions().count == 0
    assert _status(session) == SessionBinding.Status.CLOSED
    assert upstream.deletes == []


def test_dead_upstream_does_not_keep_a_session_alive(token, server, upstream):
    server.url = f"http://127.0.0.1:{free_port()}/mcp"
    server.save()
    session = make_session(token=token, server=server, idle=timedelta(hours=1))

    sweep = expire_sessions()

    assert _status(session) == SessionBinding.Status.EXPIRED
    assert sweep.retry_upstream == [session.pk]
    event = AuditEvent.objects.get(event=events.SESSION_EXPIRED, session_id=session.pk)
    assert event.detail["upstream_delete"] == "queued"
    outbox = SessionEndOutbox.objects.get(session=session)
    assert outbox.done_at is None
    assert outbox.next_attempt_at > outbox.created_at  # backing off


def test_failing_upstream_delete_can_be_retried_until_it_succeeds(token, server, upstream):
    upstream.delete_status = 503
    session = make_session(token=token, server=server, idle=timedelta(hours=1))

    sweep = expire_sessions()
    assert sweep.retry_upstream == [session.pk]
    with pytest.raises(UpstreamDeleteFailed):
        retry_upstream_delete(session_id=session.pk)

    upstream.delete_status = 200
    assert retry_upstream_delete(session_id=session.pk) == 200
    assert upstream.deleted_session_ids() == [session.upstream_session_id] * 3


def test_upstream_that_already_forgot_the_session_is_not_retried(token, server, upstream):
    upstream.delete_status = 404
    make_session(token=token, server=server, idle=timedelta(hours=1))

    assert expire_sessions().retry_upstream == []


def test_session_without_upstream_session_id_gets_no_delete(token, server, upstream):
    session = make_session(token=token, server=server, idle=timedelta(hours=1), upstream_session_id="")

    expire_sessions()

    assert _status(session) == SessionBinding.Status.EXPIRED
    assert upstream.deletes == []
    assert not SessionEndOutbox.objects.exists()


def test_sessions_of_a_revoked_token_are_ended_as_revoked(token, server, upstream):
    session = make_session(token=token, server=server)
    revoke_token(token=token, actor="tests")

    expire_sessions()

    session.refresh_from_db()
    assert session.status == SessionBinding.Status.REVOKED
    assert upstream.deleted_session_ids() == [session.upstream_session_id]


@pytest.mark.parametrize("state", TOKEN_STATES, ids=str)
def test_the_sweep_ends_a_session_exactly_when_its_token_is_dead(state, token, server, upstream):
    session = make_session(token=token, server=server)
    put_in_state(token, state)

    sweep = expire_sessions()

    session.refresh_from_db()
    if state.usable:
        assert sweep.count == 0
        assert session.status == SessionBinding.Status.ACTIVE
        return
    assert sweep.count == 1
    if state.liveness == Liveness.EXPIRED:
        assert (session.status, session.end_reason) == (SessionBinding.Status.EXPIRED, "token expired")
    else:  # revoked, or rotated and out of grace
        assert (session.status, session.end_reason) == (SessionBinding.Status.REVOKED, "token revoked")
    assert upstream.deleted_session_ids() == [session.upstream_session_id]
    event = AuditEvent.objects.get(event=events.SESSION_EXPIRED, session_id=session.pk)
    assert event.actor == SWEEP_ACTOR


def test_retry_of_an_active_session_does_nothing(token, server, upstream):
    session = make_session(token=token, server=server)

    assert retry_upstream_delete(session_id=session.pk) is None
    assert upstream.deletes == []


def test_manage_py_expire_sessions_runs_the_same_sweep(token, server, upstream, capsys):
    idle = make_session(token=token, server=server, idle=timedelta(hours=1))
    fresh = make_session(token=token, server=server)

    call_command("expire_sessions")

    assert "Expired 1 session(s)." in capsys.readouterr().out
    assert _status(idle) == SessionBinding.Status.EXPIRED
    assert _status(fresh) == SessionBinding.Status.ACTIVE
    assert upstream.deleted_session_ids() == [idle.upstream_session_id]


@pytest.mark.django_db(transaction=True)
def test_concurrent_sweeps_end_each_session_exactly_once(make_token, upstream):
    server = UpstreamServer.objects.create(name="demo", url=upstream.url)
    token = make_token({"demo": None}).token
    sessions = [make_session(token=token, server=server, idle=timedelta(hours=1)) for _ in range(30)]
    start = threading.Barrier(4)
    counts: list[int] = []
    errors: list[BaseException] = []

    def sweep() -> None:
        try:
            start.wait()
            counts.append(expire_sessions(batch_size=5).count)
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sum(counts) == len(sessions)
    assert sorted(upstream.deleted_session_ids()) == sorted(s.upstream_session_id for s in sessions)
    assert AuditEvent.objects.filter(event=events.SESSION_EXPIRED).count() == len(sessions)


def test_legacy_sse_session_is_expired_without_an_upstream_delete(token, server, upstream):
    session = make_session(token=token, server=server, idle=timedelta(hours=1),
                           upstream_session_id="/messages/?session_id=abc")
    SessionBinding.objects.filter(pk=session.pk).update(transport="sse")

    sweep = expire_sessions()

    assert _status(session) == SessionBinding.Status.EXPIRED
    assert sweep.retry_upstream == []
    assert upstream.deletes == []


def test_an_outbox_delete_left_by_a_crashed_sweep_is_sent_by_the_next_one(token, server, upstream):
    """A worker killed after the batch committed leaves the outbox row; the next sweep sends it."""
    session = make_session(token=token, server=server, idle=timedelta(hours=1))
    with patch("gateway.services.deliver_upstream_deletes", return_value=[]):  # "crash" after the commit
        expire_sessions()
    assert _status(session) == SessionBinding.Status.EXPIRED
    assert AuditEvent.objects.filter(event=events.SESSION_EXPIRED, session_id=session.pk).count() == 1
    assert upstream.deletes == []

    sweep = expire_sessions()

    assert (sweep.count, sweep.resumed) == (0, 1)
    assert upstream.deleted_session_ids() == [session.upstream_session_id]
    assert SessionEndOutbox.objects.get(session=session).done_at is not None
    expire_sessions()
    assert len(upstream.deletes) == 1
    assert AuditEvent.objects.filter(event=events.SESSION_EXPIRED, session_id=session.pk).count() == 1


def test_a_claimed_outbox_row_waits_for_its_lease(token, server, upstream):
    """A DELETE another worker is sending (or was sending when it died) is not sent twice at once."""
    session = make_session(token=token, server=server, idle=timedelta(hours=1))
    with patch("gateway.services.deliver_upstream_deletes", return_value=[]):
        expire_sessions()
    SessionEndOutbox.objects.update(claimed_until=timezone.now() + timedelta(minutes=1))
    assert expire_sessions().resumed == 0
    assert upstream.deletes == []

    SessionEndOutbox.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
    assert expire_sessions().resumed == 1
    assert upstream.deleted_session_ids() == [session.upstream_session_id]


def test_a_delete_failing_every_time_is_given_up_after_the_last_attempt(token, server, upstream):
    upstream.delete_status = 503
    session = make_session(token=token, server=server, idle=timedelta(hours=1))
    expire_sessions()
    for _ in range(DELETE_MAX_ATTEMPTS - 1):
        with pytest.raises(UpstreamDeleteFailed):
            retry_upstream_delete(session_id=session.pk)

    outbox = SessionEndOutbox.objects.get(session=session)
    assert outbox.done_at is not None
    assert outbox.last_error.startswith("gave up")
    assert retry_upstream_delete(session_id=session.pk) is None
    assert len(upstream.deletes) == DELETE_MAX_ATTEMPTS


def test_ending_a_batch_writes_status_audit_and_outbox_in_one_transaction(token, server, upstream):
    """If the audit append fails, the batch is not ended: nothing is ended without its event."""
    session = make_session(token=token, server=server, idle=timedelta(hours=1))
    with patch("gateway.services.record_many", side_effect=RuntimeError("audit down")), \
            pytest.raises(RuntimeError):
        expire_sessions()
    assert _status(session) == SessionBinding.Status.ACTIVE
    assert not SessionEndOutbox.objects.exists()
    assert upstream.deletes == []
