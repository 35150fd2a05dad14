"""GET /api/v1/sessions/ and DELETE /api/v1/sessions/{id}/ (terminate, telling the upstream)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from audit.models import AuditEvent
from gateway.models import SessionBinding
from tests.api.conftest import bearer_client
from tests.factories import StaffUserFactory, UpstreamServerFactory, UserFactory
from tests.support.recording_upstream import recording_upstream
from tests.support.sessions import make_session
from tokens.scope import TokenScope
from tokens.services import authenticate_token, issue_token

URL = "/api/v1/sessions/"


@pytest.fixture
def upstream():
    with recording_upstream() as recorder:
        yield recorder


@pytest.fixture
def own_session(ci_key, upstream):
    server = UpstreamServerFactory(name="recorded", url=upstream.url)
    issued = issue_token(
        name="ci",
        owner=ci_key.api_key.owner,
        scope=TokenScope.from_mapping({"recorded": None}),
        ttl=timedelta(hours=1),
        actor="tests",
    )
    return issued, make_session(token=issued.token, server=server, upstream_session_id="upstream-sess-1")


@pytest.fixture
def foreign_session(servers):
    issued = issue_token(
        name="bob",
        owner=UserFactory(username="bob"),
        scope=TokenScope.from_mapping({"demo": None}),
        ttl=timedelta(hours=1),
        actor="tests",
    )
    return make_session(token=issued.token, server=servers[0])


def test_a_key_lists_the_sessions_of_its_owners_tokens(ci, own_session, foreign_session):
    results = ci.get(URL).json()["results"]

    assert [s["id"] for s in results] == [own_session[1].pk]
    assert results[0]["server"] == "recorded"
    assert results[0]["owner"] == "ci-bot"
    assert results[0]["status"] == "active"


def test_terminating_ends_the_session_and_tells_the_upstream(ci, own_session, upstream):
    issued, session = own_session

    response = ci.delete(f"{URL}{session.pk}/")

    assert response.status_code == 204
    session.refresh_from_db()
    assert session.status == SessionBinding.Status.TERMINATED
    assert upstream.deleted_session_ids() == ["upstream-sess-1"]
    assert AuditEvent.objects.filter(event="session.terminated", session_id=session.pk).exists()
    authenticate_token(raw_token=issued.secret)  # the token itself stays valid


def test_terminating_an_ended_session_gets_409(ci, own_session):
    session = own_session[1]
    ci.delete(f"{URL}{session.pk}/")

    response = ci.delete(f"{URL}{session.pk}/")

    assert response.status_code == 409
    assert response.json()["error"] == "invalid_state"


def test_another_owners_session_is_404(ci, foreign_session):
    assert ci.delete(f"{URL}{foreign_session.pk}/").status_code == 404
    foreign_session.refresh_from_db()
    assert foreign_session.status == SessionBinding.Status.ACTIVE


def test_sessions_filter_by_status(ci, own_session):
    ci.delete(f"{URL}{own_session[1].pk}/")

    assert ci.get(f"{URL}?status=active").json()["results"] == []
    assert len(ci.get(f"{URL}?status=terminated").json()["results"]) == 1


def test_a_staff_key_sees_every_session(servers, make_api_key, own_session, foreign_session):
    staff = bearer_client(make_api_key(owner=StaffUserFactory(username="ops")).secret)

    assert {s["id"] for s in staff.get(URL).json()["results"]} == {own_session[1].pk, foreign_session.pk}
