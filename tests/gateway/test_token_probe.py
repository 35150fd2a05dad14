"""Test this token" on the token page: what the token can see, asked of the live gateway.

The admin signs in to a live daphne over HTTP and posts the form, as a browser would; the probe
then goes through that same gateway (its own URL), so every check a client meets applies.
"""

from __future__ import annotations

import re
from html import unescape

import httpx
import pytest

from audit.models import AuditEvent
from tests.factories import DEFAULT_PASSWORD
from tokens.services import revoke_token

pytestmark = pytest.mark.integration

ROW = re.compile(r"<tr><td>([\w-]+)</td>\s*<td>(.*?)</td>\s*<td>(.*?)</td></tr>", re.S)


def signed_in(base_url: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base_url, timeout=30)
    client.get("/accounts/login/")
    client.post("/accounts/login/", data={
        "username": username, "password": DEFAULT_PASSWORD,
        "csrfmiddlewaretoken": client.cookies["csrftoken"],
    }, headers={"Referer": f"{base_url}/accounts/login/"})
    return client


def run_token_test(client: httpx.Client, token_id: int, secret: str) -> dict[str, tuple[str, str]]:
    page = client.get(f"/console/tokens/{token_id}/")
    assert page.status_code == 200
    answer = client.post(f"/console/tokens/{token_id}/test/", data={
        "secret": secret, "csrfmiddlewaretoken": client.cookies["csrftoken"],
    }, headers={"Referer": f"{client.base_url}/console/tokens/{token_id}/"})
    assert answer.status_code == 200
    assert "no-store" in answer.headers.get("cache-control", "")
    body = answer.text
    assert secret not in body
    error = re.search(r'<p class="error" role="alert">(.*?)</p>', body)
    rows = {server: (unescape(re.sub("<[^>]+>", "", status)).strip(), unescape(re.sub("<[^>]+>", "", tools)))
            for server, status, tools in ROW.findall(body)}
    if error:
        rows["error"] = (unescape(error.group(1)), "")
    return rows


@pytest.fixture
def console(gw, staff_user) -> httpx.Client:
    client = signed_in(gw.url, staff_user.username)
    yield client
    client.close()


def test_a_good_token_shows_exactly_the_tools_its_scope_allows(gw, console):
    issued = gw.token({"demo": ["echo", "add"]})
    rows = run_token_test(console, issued.token.pk, issued.secret)
    assert rows["demo"] == ("200 OK", "add, echo")  # secret_tool and the rest filtered out

    tested = AuditEvent.objects.filter(event="token.tested", token_jti=issued.token.jti).get()
    assert tested.detail["servers"]["demo"] == {"status": 200, "tools": 2, "error": ""}
    assert tested.actor == "root-admin"
    assert not AuditEvent.objects.filter(detail__icontains=issued.secret.removeprefix("gth_")[:40]).exists()
    assert issued.secret.removeprefix("gth_") not in gw.server_log.log()


def test_a_revoked_token_shows_the_gateways_401(gw, console):
    issued = gw.token({"demo": None})
    revoke_token(token=issued.token, actor="tests")
    status, tools = run_token_test(console, issued.token.pk, issued.secret)["demo"]
    assert status.startswith("401") and "revoked" in status
    assert tools == "—"


def test_another_tokens_secret_is_refused_before_anything_is_sent(gw, console):
    mine, other = gw.token({"demo": None}, name="mine"), gw.token({"demo": None}, name="other")
    rows = run_token_test(console, mine.token.pk, other.secret)
    refusal = "That is not this token's secret: paste the token shown when it was issued."
    assert rows == {"error": (refusal, "")}
    assert not AuditEvent.objects.filter(event="token.tested").exists()
    assert not AuditEvent.objects.filter(token_jti=other.token.jti, event="session.created").exists()
