"""The hot path answers from per-process caches and never admits what the database would refuse.

Against the live gateway (``manage.py serve`` in its own process): once a token, its server and
its session have been seen, ``/ready`` says the process admits from its caches (``hot_path:
cached``). Every change that would turn an answer into a refusal still refuses the next
request: at once on the instance that made it (its REST API), and within the change feed's poll
when another process made it (here: this test process, as a CLI or a Celery sweep would).
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from gateway.models import SessionBinding
from gateway.services import end_session
from tests.gateway.drivers import call, eventually, initialize
from tokens.api_keys import create_api_key
from tokens.services import revoke_token
from upstreams.models import UpstreamServer
from upstreams.services import set_server_enabled

pytestmark = pytest.mark.integration


def ready(gw) -> dict:
    return httpx.get(f"{gw.url}/ready", timeout=10).json()


@pytest.fixture
def warm(gw):
    """A token with a session on ``demo``, admitted from the caches (seen once, then cached)."""
    token = gw.token({"demo": None})
    session_id = initialize(gw.mcp("demo"), token.secret)
    for _ in range(3):
        assert call(gw.mcp("demo"), token.secret, session_id, "echo", {"text": "x"}).status_code == 200
    eventually(lambda: ready(gw)["hot_path"] == "cached")
    return token, session_id


def test_the_instance_that_revokes_refuses_the_very_next_request(gw, warm):
    token, session_id = warm
    key = create_api_key(name="ci", owner=token.token.owner, scope_ceiling=None, max_ttl=timedelta(hours=1),
                         actor="tests")
    revoked = httpx.post(f"{gw.url}/api/v1/tokens/{token.token.pk}/revoke/", json={"reason": "drill"},
                         headers={"Authorization": f"Bearer {key.secret}"}, timeout=15)
    assert revoked.status_code == 200, revoked.text
    after = [call(gw.mcp("demo"), token.secret, session_id, "echo").status_code for _ in range(5)]
    assert after == [401] * 5


def test_a_revocation_by_another_process_reaches_the_cache(gw, warm):
    token, session_id = warm
    revoke_token(token=token.token, actor="tests", reason="from the CLI")
    eventually(lambda: call(gw.mcp("demo"), token.secret, session_id, "echo").status_code == 401)
    # And it stays refused: no stale verdict comes back.
    assert [call(gw.mcp("demo"), token.secret, session_id, "echo").status_code for _ in range(5)] == [401] * 5


def test_a_server_disabled_by_another_process_is_refused(gw, warm):
    token, session_id = warm
    set_server_enabled(server=UpstreamServer.objects.get(name="demo"), enabled=False, actor="tests")
    eventually(lambda: call(gw.mcp("demo"), token.secret, session_id, "echo").status_code == 404)
    refused = call(gw.mcp("demo"), token.secret, session_id, "echo")
    assert refused.json()["error"] == "unknown_server"


def test_a_session_ended_by_another_process_is_refused(gw, warm):
    token, session_id = warm
    assert end_session(session_id=session_id, status=SessionBinding.Status.EXPIRED, reason="swept",
                       actor="tests", notify_upstream=False)
    eventually(lambda: call(gw.mcp("demo"), token.secret, session_id, "echo").status_code == 404)


def test_an_owner_deactivated_elsewhere_is_refused(gw, warm):
    token, session_id = warm
    owner = token.token.owner
    owner.is_active = False
    owner.save(update_fields=["is_active"])
    eventually(lambda: call(gw.mcp("demo"), token.secret, session_id, "echo").status_code == 401)
