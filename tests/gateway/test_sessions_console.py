"""Console sessions page: staff and auditors see live and recent sessions; only staff terminate."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from audit import events
from audit.models import AuditEvent
from core.permissions import AUDITOR_GROUP
from gateway.models import SessionBinding
from gateway.templatetags.session_display import elapsed_since
from tests.factories import UserFactory
from tests.support.recording_upstream import recording_upstream
from tests.support.sessions import make_session
from upstreams.models import UpstreamServer

URL = "/console/sessions/"


@pytest.fixture
def upstream():
    with recording_upstream() as recorder:
        yield recorder


@pytest.fixture
def server(db, upstream) -> UpstreamServer:
    return UpstreamServer.objects.create(name="demo", url=upstream.url)


@pytest.fixture
def issued(make_token, server):
    return make_token({"demo": None}, name="laptop")


@pytest.fixture
def session(issued, server) -> SessionBinding:
    return make_session(
        token=issued.token,
        server=server,
        idle=timedelta(minutes=7),
        age=timedelta(hours=1),
        client_ip="198.51.100.7",
        user_agent="claude-desktop/0.9",
    )


@pytest.fixture
def auditor_client(client, db):
    auditor = UserFactory(username="eve-auditor")
    auditor.groups.add(Group.objects.get_or_create(name=AUDITOR_GROUP)[0])
    client.force_login(auditor)
    return client


def _terminate_url(session: SessionBinding) -> str:
    return f"{URL}{session.pk}/terminate/"


def test_live_session_is_listed_with_token_server_client_and_idle_time(staff_client, session, issued):
    response = staff_client.get(URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert issued.token.display_prefix in page
    assert f"/console/tokens/{issued.token.pk}/" in page
    assert "demo" in page
    assert "198.51.100.7" in page
    assert "claude-desktop/0.9" in page
    assert "<td>7 min</td>" in page
    assert "Terminate" in page
    assert f"/console/audit/session/{session.pk}/" in page


def test_page_never_shows_the_token_secret(staff_client, session, issued):
    page = staff_client.get(URL).content.decode()

    assert issued.secret not in page
    assert issued.secret[4:40] not in page


def test_recently_ended_session_is_listed_with_why(staff_client, issued, server):
    ended = make_session(token=issued.token, server=server, idle=timedelta(hours=2))
    SessionBinding.objects.filter(pk=ended.pk).update(
        status=SessionBinding.Status.EXPIRED,
        ended_at=ended.last_seen_at,
        end_reason="idle for more than 1800s",
    )

    page = staff_client.get(URL).content.decode()

    assert "Expired" in page
    assert "idle for more than 1800s" in page
    assert "No live sessions." in page


def test_staff_terminates_a_session_like_expiry_does(staff_client, staff_user, session, upstream):
    response = staff_client.post(_terminate_url(session))

    assert response.status_code == 302
    session.refresh_from_db()
    assert session.status == SessionBinding.Status.TERMINATED
    assert session.end_reason == f"terminated by {staff_user.username}"
    assert upstream.deleted_session_ids() == [session.upstream_session_id]
    event = AuditEvent.objects.get(event=events.SESSION_TERMINATED, session_id=session.pk)
    assert event.actor == staff_user.username
    assert "terminated" in staff_client.get(response["Location"]).content.decode()


def test_terminating_an_ended_session_changes_nothing(staff_client, session, upstream):
    staff_client.post(_terminate_url(session))

    response = staff_client.post(_terminate_url(session), follow=True)

    assert "already ended" in response.content.decode()
    assert len(upstream.deletes) == 1
    assert AuditEvent.objects.filter(event=events.SESSION_TERMINATED).count() == 1


def test_terminate_of_an_unknown_session_is_404(staff_client, db):
    assert staff_client.post(f"{URL}no-such-session/terminate/").status_code == 404


def test_terminate_needs_post(staff_client, session):
    assert staff_client.get(_terminate_url(session)).status_code == 405
    session.refresh_from_db()
    assert session.status == SessionBinding.Status.ACTIVE


def test_terminate_needs_csrf(staff_user, session):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)

    assert client.post(_terminate_url(session)).status_code == 403
    session.refresh_from_db()
    assert session.status == SessionBinding.Status.ACTIVE


def test_auditor_sees_sessions_without_terminate_button(auditor_client, session, issued):
    response = auditor_client.get(URL)

    assert response.status_code == 200
    page = response.content.decode()
    assert issued.token.display_prefix in page
    assert "Terminate" not in page


def test_auditor_cannot_terminate(auditor_client, session, upstream):
    assert auditor_client.post(_terminate_url(session)).status_code == 403
    session.refresh_from_db()
    assert session.status == SessionBinding.Status.ACTIVE
    assert upstream.deletes == []


def test_non_staff_user_gets_403(client, user, session):
    client.force_login(user)

    assert client.get(URL).status_code == 403


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(URL)

    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_filter_by_server_hides_other_servers(staff_client, make_token, session):
    other_token = make_token({"other": None}, name="ci").token
    other_server = UpstreamServer.objects.get(name="other")
    make_session(token=other_token, server=other_server, client_ip="203.0.113.99")

    page = staff_client.get(URL, {"server": "demo"}).content.decode()

    assert "198.51.100.7" in page
    assert "203.0.113.99" not in page


def test_filter_by_token_shows_only_its_sessions(staff_client, make_token, session, server, issued):
    other_token = make_token({"demo": None}, name="ci").token
    make_session(token=other_token, server=server, client_ip="203.0.113.99")

    page = staff_client.get(URL, {"token": issued.token.pk}).content.decode()

    assert "198.51.100.7" in page
    assert "203.0.113.99" not in page


@pytest.mark.parametrize(
    ("idle", "shown"),
    [
        (timedelta(seconds=20), "20 s"),
        (timedelta(minutes=12, seconds=5), "12 min"),
        (timedelta(hours=3, minutes=5), "3 h 5 min"),
        (timedelta(days=2, hours=4), "2 d 4 h"),
    ],
)
def test_idle_time_is_precise_while_short(idle, shown):
    now = timezone.now()
    assert elapsed_since(now - idle, now) == shown
