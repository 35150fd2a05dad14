"""An upstream's own credentials (URL and headers) are added by the gateway, kept encrypted at rest,
and are the only credentials the upstream ever sees."""

from __future__ import annotations

import pytest
from django.db import connection

from tests.gateway.drivers import call, initialize, sse_result

pytestmark = pytest.mark.integration


def test_upstream_url_and_header_credentials_reach_the_upstream(gw, register_upstream):
    register_upstream(
        name="keyed",
        url=f"{gw.upstream}?api_key=url-secret-123&tenant=blue",
        headers={"X-Upstream-Key": "header-secret-456"},
    )
    token = gw.token({"keyed": None})
    session_id = initialize(gw.mcp("keyed"), token.secret)
    seen = sse_result(call(gw.mcp("keyed"), token.secret, session_id, "request_info"))
    info = seen["result"]["structuredContent"]
    assert info["query_string"] == "api_key=url-secret-123&tenant=blue"
    headers = dict(info["headers"])
    assert headers["x-upstream-key"] == "header-secret-456"
    assert token.secret not in repr(info) and "x-api-key" not in headers

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM tokens_upstreamserver WHERE name = %s", ["keyed"])
        stored = repr(cursor.fetchone())
    assert "url-secret-123" not in stored and "header-secret-456" not in stored
