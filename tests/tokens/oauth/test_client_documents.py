"""Client ID Metadata Documents: the client_id is the URL of its own metadata, fetched with the
discovery fetcher's bounds; a document that lies, is too big or too slow is refused."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
from django.conf import settings
from django.test import Client

from audit.models import AuditEvent
from core import oidc_discovery
from tests.factories import UpstreamServerFactory, UserFactory
from tests.support.serving import serving_thread
from tests.tokens.oauth.flow.steps import REDIRECT, authorize_params, pkce, query_of
from tokens.oauth import grants
from tokens.oauth.models import OAuthClient


class DocumentServer:
    """A loopback HTTP server whose answers the test sets per path (http is allowed to loopback)."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[bytes, float]] = {}
        routes = self.routes

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body, delay = routes.get(self.path, (b"", 0.0))
                if not body:
                    self.send_response(404)
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                if delay:
                    # Drip the body a byte at a time: each read is quick, the whole is not.
                    for byte in body:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(delay)
                else:
                    self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        serving_thread(self.httpd).start()

    def serve(self, path: str, document: dict | bytes, *, delay: float = 0.0) -> str:
        body = document if isinstance(document, bytes) else json.dumps(document).encode()
        self.routes[path] = (body, delay)
        return self.base + path


@pytest.fixture
def documents() -> Iterator[DocumentServer]:
    server = DocumentServer()
    yield server
    server.httpd.shutdown()


@pytest.fixture
def browser(db):
    UpstreamServerFactory(name="demo")
    person = UserFactory(username="alice")
    grants.grant_access(user=person, servers=["demo"], tools=["echo"], actor="tests")
    client = Client()
    client.force_login(person)
    return client


def document(url: str, **overrides) -> dict:
    return {
        "client_id": url,
        "client_name": "VS Code",
        "redirect_uris": [REDIRECT],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code", "refresh_token"],
        **overrides,
    }


def test_a_document_client_reaches_consent_and_gets_a_token(documents, browser):
    url = documents.serve("/vscode.json", {})
    documents.serve("/vscode.json", document(url))
    verifier, challenge = pkce()
    page = browser.get("/oauth/authorize", authorize_params(url, challenge))
    assert page.status_code == 200, page.content
    html = page.content.decode()
    assert "Allow VS Code to use demo?" in html and "its metadata is published at 127.0.0.1" in html
    form = {**authorize_params(url, challenge), "decision": "allow", "tools": ["demo:echo"]}
    code = query_of(browser.post("/oauth/authorize", form)["Location"])["code"]
    answer = Client().post(
        "/oauth/token",
        content_type="application/x-www-form-urlencoded",
        data=urlencode(
            {
                "grant_type": "authorization_code",
                "client_id": url,
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
                "resource": f"{settings.PUBLIC_URL}/mcp/demo",
            }
        ),
    )
    assert answer.status_code == 200, answer.content
    assert OAuthClient.objects.get(client_id=url).kind == "document"
    assert AuditEvent.objects.filter(event="oauth.client_registered", detail__kind="document").exists()


def test_a_document_naming_another_client_id_is_refused(documents, browser):
    url = documents.serve("/liar.json", document("https://claude.ai/oauth/client.json"))
    _, challenge = pkce()
    page = browser.get("/oauth/authorize", authorize_params(url, challenge))
    assert page.status_code == 401 and "Location" not in page
    assert "names another client_id" in page.content.decode()


def test_a_redirect_the_document_does_not_list_is_never_redirected_to(documents, browser):
    url = documents.serve("/app.json", {})
    documents.serve("/app.json", document(url))
    _, challenge = pkce()
    page = browser.get(
        "/oauth/authorize", authorize_params(url, challenge, redirect_uri="https://evil.example/cb")
    )
    assert page.status_code == 400 and "Location" not in page


def refusal_reason(caplog) -> str:
    """Why the fetch was refused: in the server log only, never told to the caller."""
    return " ".join(getattr(r, "reason", "") for r in caplog.records if r.name == "gatehouse.oauth")


def test_an_oversize_document_is_refused(documents, browser, caplog):
    url = documents.serve("/big.json", {})
    documents.serve("/big.json", document(url, client_name="x" * 300_000))
    _, challenge = pkce()
    with caplog.at_level(logging.INFO, logger="gatehouse.oauth"):
        page = browser.get("/oauth/authorize", authorize_params(url, challenge))
    html = page.content.decode()
    assert page.status_code == 401 and "metadata document could not be read" in html
    assert "more than" in refusal_reason(caplog) and "more than" not in html


def test_a_document_that_drips_is_cut_off(documents, browser, monkeypatch, caplog):
    # Each byte comes quickly, the whole never does: the fetch is cut off after twice the per-read
    # timeout, here 0.5 s instead of 10 s.
    monkeypatch.setattr(oidc_discovery, "FETCH_TIMEOUT_SECONDS", 0.25)
    url = documents.serve("/slow.json", {})
    documents.serve("/slow.json", document(url), delay=0.05)
    _, challenge = pkce()
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="gatehouse.oauth"):
        page = browser.get("/oauth/authorize", authorize_params(url, challenge))
    assert page.status_code == 401 and "took too long" in refusal_reason(caplog)
    assert time.monotonic() - started < 5
    # A second try within the minute is answered from the failure cache, without fetching.
    started = time.monotonic()
    assert browser.get("/oauth/authorize", authorize_params(url, challenge)).status_code == 401
    assert time.monotonic() - started < 0.2


def test_a_document_on_a_private_network_address_is_never_fetched(browser, caplog):
    _, challenge = pkce()
    with caplog.at_level(logging.INFO, logger="gatehouse.oauth"):
        page = browser.get("/oauth/authorize", authorize_params("https://10.0.0.7/client.json", challenge))
    assert page.status_code == 401 and "10.0.0.7" not in page.content.decode().split("<main>")[-1]
    assert "non-public address" in refusal_reason(caplog)


def test_a_plain_http_document_on_another_host_is_not_a_client_id(browser):
    _, challenge = pkce()
    page = browser.get("/oauth/authorize", authorize_params("http://clients.example/app.json", challenge))
    assert page.status_code == 401 and "Unknown client_id" in page.content.decode()


def test_a_document_client_must_be_public(documents, browser):
    url = documents.serve("/secret.json", {})
    documents.serve("/secret.json", document(url, token_endpoint_auth_method="client_secret_basic"))
    _, challenge = pkce()
    page = browser.get("/oauth/authorize", authorize_params(url, challenge))
    assert page.status_code == 401 and "must be public" in page.content.decode()
