"""A real worker with beat expires sessions and tokens on schedule, with no request arriving."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from audit.services import record
from gateway.models import SessionBinding, SessionEndOutbox
from gateway.services import SWEEP_ACTOR
from tests.celery.conftest import wait_until
from tests.factories import UserFactory
from tests.support.processes import free_port
from tests.support.recording_upstream import recording_upstream
from tests.support.sessions import make_session
from tests.support.smtp_sink import smtp_sink
from tokens.models import Token
from upstreams.models import UpstreamServer

pytestmark = pytest.mark.integration

IDLE_LIMIT = {"GATEHOUSE_SESSION_IDLE_SECONDS": "2"}


@pytest.fixture
def upstream():
    with recording_upstream() as recorder:
        yield recorder


@pytest.fixture
def server(transactional_db, upstream) -> UpstreamServer:
    return UpstreamServer.objects.create(name="demo", url=upstream.url)


@pytest.fixture
def token(make_token, server) -> Token:
    return make_token({"demo": None}, ttl=timedelta(days=1)).token


def _ended(session: SessionBinding) -> SessionBinding | None:
    session.refresh_from_db()
    return session if session.status != SessionBinding.Status.ACTIVE else None


def test_session_idle_past_its_limit_is_expired_by_beat(start_worker, token, server, upstream):
    start_worker(env=IDLE_LIMIT)
    session = make_session(token=token, server=server)

    wait_until(lambda: _ended(session), what="the sweep to expire the idle session")

    assert session.status == SessionBinding.Status.EXPIRED
    assert "idle" in session.end_reason
    wait_until(upstream.deleted_session_ids, what="the upstream DELETE")
    assert upstream.deleted_session_ids() == [session.upstream_session_id]
    event = wait_until(
        lambda: AuditEvent.objects.filter(event=events.SESSION_EXPIRED, session_id=session.pk).first(),
        what="the session.expired audit event",
    )
    assert event.actor == SWEEP_ACTOR
    assert event.detail["upstream_delete"] == "queued"
    outbox = wait_until(
        lambda: SessionEndOutbox.objects.filter(session=session, done_at__isnull=False).first(),
        what="the outbox row to be marked done",
    )
    assert outbox.upstream_status == 200


def test_active_session_within_its_limit_is_left_alone(start_worker, token, server, upstream):
    start_worker(env={"GATEHOUSE_SESSION_IDLE_SECONDS": "3600"})
    session = make_session(token=token, server=server, idle=timedelta(minutes=59))
    stale = make_session(token=token, server=server, idle=timedelta(minutes=61))

    wait_until(lambda: _ended(stale), what="the sweep to expire the stale session")
    wait_until(upstream.deleted_session_ids, what="the upstream DELETE")
    # The sweep that ended `stale` also looked at `session`, created before it, and kept it.
    session.refresh_from_db()
    assert session.status == SessionBinding.Status.ACTIVE
    assert upstream.deleted_session_ids() == [stale.upstream_session_id]


def test_expired_token_is_marked_and_its_session_ended_by_beat(start_worker, make_token, server, upstream):
    issued = make_token({"demo": None}, ttl=timedelta(seconds=2), name="short")
    session = make_session(token=issued.token, server=server)
    start_worker()

    wait_until(lambda: _ended(session), what="the token's session to end")
    # Whichever sweep comes first ends the session; the token sweep marks the token.
    wait_until(
        lambda: Token.objects.filter(pk=issued.token.pk, status=Token.Status.EXPIRED).exists(),
        what="the token to be marked expired",
    )
    # The token's audit event commits together with its status.
    assert AuditEvent.objects.filter(event=events.TOKEN_EXPIRED, token_jti=issued.token.jti).count() == 1
    assert session.status == SessionBinding.Status.EXPIRED
    wait_until(upstream.deleted_session_ids, what="the upstream DELETE")
    assert upstream.deleted_session_ids() == [session.upstream_session_id]


def test_token_about_to_expire_is_warned_once_by_beat(start_worker, make_token, server):
    token = make_token({"demo": None}, ttl=timedelta(days=7)).token
    # Issued five days ago, so it is two days from expiry: inside the three-day warning window.
    now = timezone.now()
    Token.objects.filter(pk=token.pk).update(
        created_at=now - timedelta(days=5), expires_at=now + timedelta(days=2)
    )
    worker = start_worker(env={"GATEHOUSE_TOKEN_WARN_BEFORE_SECONDS": str(3 * 86400)})

    wait_until(
        lambda: AuditEvent.objects.filter(event=events.TOKEN_EXPIRING, token_jti=token.jti).exists(),
        what="the token.expiring event",
    )
    runs = worker.log().count("Task tokens.tasks.warn_expiring_tokens[")
    wait_until(
        lambda: worker.log().count("Task tokens.tasks.warn_expiring_tokens[") >= runs + 4,
        what="more warning sweeps",
    )
    assert AuditEvent.objects.filter(event=events.TOKEN_EXPIRING, token_jti=token.jti).count() == 1


def test_two_workers_with_beat_end_each_session_exactly_once(start_worker, token, server, upstream):
    start_worker(env=IDLE_LIMIT)
    start_worker(env=IDLE_LIMIT)
    sessions = [make_session(token=token, server=server, idle=timedelta(hours=1)) for _ in range(40)]

    wait_until(
        lambda: not SessionBinding.objects.filter(status=SessionBinding.Status.ACTIVE).exists(),
        what="every session to be expired",
    )
    expired = AuditEvent.objects.filter(event=events.SESSION_EXPIRED)
    wait_until(lambda: expired.count() >= len(sessions), what="every session.expired event")
    # The events commit with the sessions' status; the DELETEs follow from the outbox.
    wait_until(lambda: len(upstream.deletes) >= len(sessions), what="every upstream DELETE")

    assert Counter(upstream.deleted_session_ids()) == Counter(s.upstream_session_id for s in sessions)
    audited = Counter(expired.values_list("session_id", flat=True))
    assert audited == Counter(s.pk for s in sessions)


def test_dead_upstream_does_not_keep_the_session_alive_and_the_failure_is_logged(
    start_worker, token, server
):
    server.url = f"http://127.0.0.1:{free_port()}/mcp"
    server.save()
    session = make_session(token=token, server=server, idle=timedelta(hours=1))
    worker = start_worker(env=IDLE_LIMIT)

    wait_until(lambda: _ended(session), what="the session to expire despite the dead upstream")

    assert session.status == SessionBinding.Status.EXPIRED
    wait_until(
        lambda: any(line["message"] == "upstream DELETE retry scheduled" for line in worker.json_lines()),
        what="the retry of the upstream DELETE in the worker log",
    )
    failures = [line for line in worker.json_lines() if line["message"] == "upstream DELETE failed"]
    assert failures
    assert failures[0]["level"] == "WARNING"
    assert failures[0]["session_id"] == session.pk


def test_audit_events_past_retention_are_pruned_by_beat(start_worker, transactional_db):
    old = record(event=events.TOKEN_ISSUED, actor="tests", created_at=timezone.now() - timedelta(days=400))
    kept = record(event=events.TOKEN_ISSUED, actor="tests")
    start_worker(env={"GATEHOUSE_AUDIT_PRUNE_SECONDS": "1", "GATEHOUSE_AUDIT_RETENTION_DAYS": "365"})

    wait_until(lambda: not AuditEvent.objects.filter(pk=old.pk).exists(), what="the old event to be pruned")

    assert AuditEvent.objects.filter(pk=kept.pk).exists()
    checkpoint = AuditEvent.objects.get(event=events.AUDIT_PRUNED)
    assert checkpoint.detail["last_deleted_id"] == old.pk


def test_owner_gets_one_expiry_email_over_smtp(start_worker, make_token, server):
    owner = UserFactory(username="carol", email="carol@example.test")
    issued = make_token({"demo": None}, ttl=timedelta(days=7), owner=owner, name="laptop")
    now = timezone.now()
    Token.objects.filter(pk=issued.token.pk).update(
        created_at=now - timedelta(days=5), expires_at=now + timedelta(days=2)
    )
    with smtp_sink() as sink:
        worker = start_worker(env={"GATEHOUSE_EMAIL_URL": sink.url})

        wait_until(lambda: sink.messages, what="the expiry email")
        runs = worker.log().count("Task tokens.tasks.warn_expiring_tokens[")
        wait_until(
            lambda: worker.log().count("Task tokens.tasks.warn_expiring_tokens[") >= runs + 4,
            what="more warning sweeps",
        )

    assert len(sink.messages) == 1
    message = sink.messages[0]
    assert message["To"] == "carol@example.test"
    assert "laptop" in message["Subject"]
    body = message.get_payload(decode=True).decode()
    assert issued.token.display_prefix in body
    assert issued.secret[4:] not in body


def test_failed_upstream_delete_is_retried_until_the_upstream_recovers(start_worker, token, server, upstream):
    upstream.delete_status = 503
    session = make_session(token=token, server=server, idle=timedelta(hours=1))
    worker = start_worker(env=IDLE_LIMIT)

    wait_until(upstream.deleted_session_ids, what="the first upstream DELETE")
    assert _ended(session) is not None
    upstream.delete_status = 200
    wait_until(lambda: len(upstream.deletes) >= 2, what="the retried upstream DELETE")

    assert set(upstream.deleted_session_ids()) == {session.upstream_session_id}
    # Backoff is 5 s, 10 s, 20 s … (jittered): allow a couple of rounds.
    wait_until(lambda: "upstream DELETE retried" in worker.log(), timeout=90, what="a successful retry")
