"""A web process stopped with SIGTERM (Ctrl-C, honcho, a container stop) logs no errors on the way
out: the shared upstream client is closed while the loop still runs, so aiohttp never reports an
"Unclosed client session" or "Unclosed connector"."""

from __future__ import annotations

import sys

import httpx
import pytest

from tests.gatehouse.test_serve_masks_credentials import INITIALIZE, serving
from tests.support.processes import free_port, subprocess_env

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("server", ["daphne", "uvicorn"])
def test_sigterm_after_upstream_traffic_logs_no_unclosed_session(
    server, transactional_db, make_token, tmp_path,
):
    issued = make_token({"demo": None})  # its server, demo, points at a port nothing listens on
    env = subprocess_env({"GATEHOUSE_DATA_DIR": str(tmp_path / "data")})
    port = free_port()
    args = [sys.executable, "manage.py", "serve", "--port", str(port), "--server", server]
    with serving(args, env=env, port=port, tmp_path=tmp_path) as output:
        response = httpx.post(f"http://127.0.0.1:{port}/mcp/demo/", json=INITIALIZE, timeout=30, headers={
            "Authorization": f"Bearer {issued.secret}", "Accept": "application/json, text/event-stream"})
        assert response.status_code == 502  # the upstream client was built and used
    written = output.stdout + output.stderr
    assert "Unclosed" not in written, written[-3000:]
    assert '"level": "ERROR"' not in written, written[-3000:]
