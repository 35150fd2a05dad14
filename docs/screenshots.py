"""Screenshots for the README: the dashboard and a token page after "Test this token".

    .venv/bin/python docs/screenshots.py              # writes docs/dashboard.png, docs/token-page.png
    .venv/bin/python docs/screenshots.py --out DIR    # the same pictures into DIR

Beside the pictures it writes ``screenshots.json``: per picture, the console's navigation and the
page's headings as Chromium saw them. CI runs this script (tests/e2e/test_screenshots.py) and
compares that record with the committed ``docs/screenshots.json``, so a console change that
would make the README's pictures stale (a new page in the navigation, a renamed section) fails
until the pictures are taken again.

Everything runs from a throwaway data dir: migrate, 20,000 seeded audit events over two days,
a real SDK upstream (tests.support.upstream), Gatehouse via ``manage.py serve``, a few real MCP
calls through the gateway (so there are live sessions and fresh traffic), then headless Chromium
(Debian's ``chromium``) signs in through the login form and takes the pictures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.processes import free_port, running  # noqa: E402

PASSWORD = secrets.token_urlsafe(12)
SETUP = """
from datetime import timedelta
from django.contrib.auth import get_user_model
from tokens.scope import TokenScope
from tokens.services import issue_token, revoke_token
from upstreams.services import create_server
admin = get_user_model().objects.create_superuser("admin", "admin@example.com", {password!r})
alice = get_user_model().objects.create_user("alice")
create_server(name="notes", url={upstream!r}, actor="admin")
create_server(name="search", url={upstream!r}, actor="admin")
notes_tools = TokenScope.from_mapping({{"notes": ["echo", "add"]}})
issue_token(name="claude-desktop", owner=alice, scope=notes_tools, ttl=timedelta(days=30), actor="admin")
issue_token(name="ci-nightly", owner=alice, scope=TokenScope.from_mapping({{"search": None}}),
            ttl=timedelta(days=3), actor="admin")
old = issue_token(name="laptop-2025", owner=alice, scope=TokenScope.from_mapping({{"notes": None}}),
                  ttl=timedelta(days=30), actor="admin")
revoke_token(token=old.token, actor="admin", reason="laptop replaced")
shown = issue_token(name="notes-reader", owner=alice, scope=notes_tools, ttl=timedelta(days=30),
                    actor="admin")
print(shown.token.pk, shown.secret)
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs", help="where the pictures go")
    parser.add_argument("--events", type=int, default=20000, help="audit events to seed")
    options = parser.parse_args(argv)
    options.out.mkdir(parents=True, exist_ok=True)
    data_dir = Path(tempfile.mkdtemp(prefix="gatehouse-shots-"))
    env = {**os.environ, "GATEHOUSE_DATA_DIR": str(data_dir),
           "GATEHOUSE_SECRET_KEY": secrets.token_urlsafe(40), "PYTHONUNBUFFERED": "1"}
    for key in ("DATABASE_URL", "REDIS_URL"):
        env.pop(key, None)
    upstream_port, port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}/mcp"
    base = f"http://127.0.0.1:{port}"
    env["GATEHOUSE_PUBLIC_URL"] = base

    def manage(*args: str, stdin: str | None = None) -> str:
        done = subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, input=stdin,  # noqa: S603
                              capture_output=True, text=True, check=True)
        return done.stdout

    try:
        manage("prepare_data_dir")
        manage("migrate", "--noinput")
        manage("seed_audit", str(options.events), "--days", "2")
        setup = SETUP.format(password=PASSWORD, upstream=upstream)
        token_id, secret = manage("shell", stdin=setup).split()[-2:]
        upstream_args = [sys.executable, "-m", "tests.support.upstream", "--port", str(upstream_port)]
        serve_args = [sys.executable, "manage.py", "serve", "--port", str(port)]
        with running(upstream_args, env=env, ready_url=f"http://127.0.0.1:{upstream_port}/health",
                     log_path=data_dir / "upstream.log"), \
             running(serve_args, env=env, ready_url=f"{base}/health", log_path=data_dir / "serve.log"):
            _traffic(f"{base}/mcp/notes/", secret)
            _pictures(base, int(token_id), secret, options.out)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def _traffic(url: str, secret: str) -> None:
    headers = {"Authorization": f"Bearer {secret}", "Accept": "application/json, text/event-stream",
               "MCP-Protocol-Version": "2025-06-18"}
    started = httpx.post(url, headers=headers, json={
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "shots", "version": "1"}},
    })
    headers["Mcp-Session-Id"] = started.headers["mcp-session-id"]
    httpx.post(url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    for i, tool in enumerate(["echo", "add", "echo", "secret_tool"]):
        arguments = {"text": "hi"} if tool == "echo" else {"a": 1, "b": 2} if tool == "add" else {}
        httpx.post(url, headers=headers, json={"jsonrpc": "2.0", "id": 10 + i, "method": "tools/call",
                                               "params": {"name": tool, "arguments": arguments}})


def _pictures(base: str, token_id: int, secret: str, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium"), headless=True,
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        page = browser.new_page(base_url=base, viewport={"width": 1280, "height": 900})
        page.goto("/accounts/login/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url("**/console/")
        shown = {"dashboard.png": _what_it_shows(page)}
        page.screenshot(path=str(out / "dashboard.png"), full_page=True)
        page.goto(f"/console/tokens/{token_id}/")
        page.get_by_label("Token", exact=True).fill(secret)
        page.get_by_role("button", name="Test this token").click()
        page.wait_for_selector("table[aria-label='What this token can see']")
        shown["token-page.png"] = _what_it_shows(page)
        page.screenshot(path=str(out / "token-page.png"), full_page=True)
        browser.close()
    (out / "screenshots.json").write_text(json.dumps(shown, indent=2) + "\n")


def _what_it_shows(page) -> dict[str, list[str]]:  # noqa: ANN001 (playwright's Page, imported late)
    """The navigation's links and the page's headings: what makes a picture stale when it changes."""
    return {
        "navigation": [text.strip() for text in page.locator("nav[aria-label='Main'] a").all_inner_texts()],
        # A token's display prefix is random: the record keeps the shape, not the value.
        "headings": [re.sub(r"gth_\w+", "gth_…", text.strip())
                     for text in page.locator("main h1, main h2").all_inner_texts()],
    }


if __name__ == "__main__":
    main()
