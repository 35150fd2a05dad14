"""Real OAuth clients against Gatehouse as the authorization server, driven end to end.

Every client is given only the URL ``<base>/mcp/<server>/`` and finds the rest itself (protected
resource metadata, authorization server metadata, registration), as Claude, ChatGPT, VS Code or
Cursor do. The person's part (sign-in, consent) happens in headless Chromium, by labels.

- :func:`sdk_flow`: the official Python SDK (``OAuthClientProvider`` over
  ``streamable_http_client``) with an in-memory :class:`MemoryTokenStorage`; Dynamic Client
  Registration by default, a Client ID Metadata Document with ``client_metadata_url=``. Its
  redirect handler hands the authorization URL to :func:`decide_in_browser`; its callback handler
  returns what reached a loopback :class:`CallbackServer`.
- :func:`mcp_remote_flow`: ``mcp-remote`` from npm (``tests/clients``) as a stdio server under the
  SDK's ``stdio_client``; the authorization URL it prints goes to the browser, which the consent
  sends to mcp-remote's own loopback callback. A fresh ``HOME`` per run keeps tokens apart.
- :func:`decide_in_browser`: signs in on the console login page and presses ``Allow`` or ``Deny``
  on the consent page (optionally unticking tools first); reports what the page offered and where
  the browser was sent.
- :class:`TestCA` and :class:`DocumentServer`: a throwaway CA made with ``cryptography`` and a
  loopback https server signed by it, serving client metadata documents (CIMD). The live
  Gatehouse trusts the CA through ``SSL_CERT_FILE`` (:meth:`TestCA.trust_env`): httpx
  (``create_ssl_context``) and httpx2 (``httpcore2.default_ssl_context``) read it when
  ``trust_env`` is on, their default; the bundle holds certifi's roots as well, so nothing
  else the server reaches loses trust.

All flows are ``async`` (asyncio: Playwright's async API shares the loop with the SDK client);
tests run them with ``asyncio.run``. Nothing here touches the Django ORM.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import os
import re
import shutil
import ssl
import threading
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.processes import REPO_ROOT
from tests.support.serving import serving_thread

CLIENTS_DIR = REPO_ROOT / "tests" / "clients"
MCP_REMOTE_BIN = CLIENTS_DIR / "node_modules" / ".bin" / "mcp-remote"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu"]

# How long a person may take in the browser, and a whole flow, before a run counts as stuck.
BROWSER_TIMEOUT_MS = 15_000
FLOW_TIMEOUT_SECONDS = 90.0


class FlowError(AssertionError):
    """A client flow did not get as far as it should; the message says where it stopped."""


@dataclass(frozen=True)
class Person:
    username: str
    password: str


def query_of(url: str) -> dict[str, str]:
    """The query parameters of ``url`` (first value of each)."""
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}


# ---------------------------------------------------------------------------------------------
# Loopback callback (what a native client listens on for the authorization response)
# ---------------------------------------------------------------------------------------------


class CallbackServer:
    """``http://127.0.0.1:<port>/callback``: records each authorization response (the query of
    each request to the path) and answers a plain page, as a desktop client's loopback listener
    does (RFC 8252)."""

    def __init__(self, path: str = "/callback") -> None:
        self.path = path
        self.requests: list[str] = []
        self.responses: list[dict[str, str]] = []
        self._consumed = 0
        self._arrived = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                if urlsplit(self.path).path == owner.path:
                    with owner._arrived:
                        owner.responses.append(query_of(self.path))
                        owner._arrived.notify_all()
                body = b"<!doctype html><title>Done</title><p>You can close this window.</p>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = serving_thread(self._server)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def params(self) -> dict[str, str] | None:
        """The latest authorization response, or None if none came yet."""
        return self.responses[-1] if self.responses else None

    async def wait(self, timeout: float = 30.0) -> dict[str, str]:
        """The next authorization response not yet returned by ``wait``."""

        def next_response() -> dict[str, str] | None:
            with self._arrived:
                if not self._arrived.wait_for(lambda: len(self.responses) > self._consumed, timeout):
                    return None
                self._consumed += 1
                return self.responses[self._consumed - 1]

        params = await asyncio.to_thread(next_response)
        if params is None:
            raise FlowError(f"nothing (more) reached the loopback callback {self.url} within {timeout}s")
        return params

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> CallbackServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# The browser: sign-in and consent by labels
# ---------------------------------------------------------------------------------------------


@dataclass
class BrowserResult:
    """What the person saw and where the browser ended up."""

    final_url: str = ""
    signed_in: bool = False
    consent_shown: bool = False
    consent_heading: str = ""
    consent_text: str = ""
    tools_offered: list[str] = field(default_factory=list)
    tools_checked: list[str] = field(default_factory=list)
    page_text: str = ""  # the text of the last Gatehouse page (e.g. "no access")
    authorization_status: int | None = None  # HTTP status of the first authorization request

    @property
    def redirect_params(self) -> dict[str, str]:
        return query_of(self.final_url)


@contextlib.asynccontextmanager
async def launched_browser() -> AsyncIterator[Any]:
    """Headless Debian Chromium under Playwright's async API."""
    executable = shutil.which("chromium")
    if executable is None:
        raise FlowError("Debian chromium is not installed (apt-get install chromium)")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()


async def decide_in_browser(
    browser: Any,
    authorization_url: str,
    person: Person,
    *,
    redirect_prefix: str,
    decision: str = "allow",
    untick: Iterable[str] = (),
    follow_back: bool = True,
    screenshot_dir: Path | None = None,
) -> BrowserResult:
    """Open ``authorization_url`` in a fresh context, sign in as ``person`` when asked, and press
    ``Allow`` or ``Deny`` (``decision``) after unticking ``untick``. Returns once the browser is on
    ``redirect_prefix`` (the client's redirect URI), or on a Gatehouse page that offers no consent
    (e.g. "no access"), whose text is then in ``page_text``. On such a page a link back to the
    client (``href`` on ``redirect_prefix``) is followed when ``follow_back``, as a person would."""
    assert decision in ("allow", "deny")
    result = BrowserResult()
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(BROWSER_TIMEOUT_MS)
    page = await context.new_page()

    def at_client(url: str) -> bool:
        return url.startswith(redirect_prefix)

    async def snapshot(name: str) -> None:
        if screenshot_dir is not None:
            with contextlib.suppress(Exception):
                await page.screenshot(path=str(screenshot_dir / f"{name}.png"), full_page=True)

    try:
        response = await page.goto(authorization_url)
        result.authorization_status = response.status if response is not None else None
        if "/accounts/login/" in urlsplit(page.url).path:
            await page.get_by_label("Username").fill(person.username)
            await page.get_by_label("Password").fill(person.password)
            await page.get_by_role("button", name="Log in").click()
            await page.wait_for_url(lambda url: "/accounts/login/" not in urlsplit(url).path)
            result.signed_in = True
        await page.wait_for_load_state()
        if not at_client(page.url):
            allow = page.get_by_role("button", name="Allow", exact=True)
            if await allow.count():
                result.consent_shown = True
                heading = page.get_by_role("heading", level=1).first
                result.consent_heading = " ".join((await heading.inner_text()).split())
                result.consent_text = await page.locator("body").inner_text()
                for box in await page.get_by_role("checkbox").all():
                    label = await _label_of(page, box)
                    result.tools_offered.append(label)
                    if await box.is_checked():
                        result.tools_checked.append(label)
                for tool in untick:
                    await page.get_by_label(tool, exact=True).uncheck()
                await snapshot("consent")
                button = allow if decision == "allow" else page.get_by_role("button", name="Deny", exact=True)
                async with page.expect_navigation():
                    await button.click()
                await page.wait_for_load_state()
        if not at_client(page.url):
            # A Gatehouse page that does not hand back to the client by itself ("no access", an
            # error): report what it says, then take its link back to the client if it has one.
            result.page_text = await page.locator("body").inner_text()
            await snapshot("last-page")
            back = page.locator(f'a[href^="{redirect_prefix}"]')
            if follow_back and await back.count():
                async with page.expect_navigation():
                    await back.first.click()
        result.final_url = page.url
        return result
    finally:
        await context.close()


async def _label_of(page: Any, box: Any) -> str:
    """The text of the label for a checkbox (``<label for=id>`` or an enclosing ``<label>``)."""
    label = await box.evaluate(
        """(el) => {
            if (el.labels && el.labels.length) return el.labels[0].innerText;
            return el.getAttribute('aria-label') || el.value || '';
        }"""
    )
    return " ".join(label.split())


# ---------------------------------------------------------------------------------------------
# The official Python SDK's OAuth client
# ---------------------------------------------------------------------------------------------


class MemoryTokenStorage:
    """The SDK's ``TokenStorage`` protocol, in memory (one client installation)."""

    def __init__(self) -> None:
        self.tokens: Any = None
        self.client_info: Any = None

    async def get_tokens(self) -> Any:
        return self.tokens

    async def set_tokens(self, tokens: Any) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> Any:
        return self.client_info

    async def set_client_info(self, client_info: Any) -> None:
        self.client_info = client_info


@dataclass
class ClientOutcome:
    """What a client run got: the tools it listed, what a call answered, or why it failed."""

    authorization_url: str = ""
    browser: BrowserResult | None = None  # the latest visit; all of them in ``browsers``
    browsers: list[BrowserResult] = field(default_factory=list)
    callback: dict[str, str] | None = None  # the (latest) authorization response the client received
    tools: list[str] | None = None
    call_text: str | None = None
    call_is_error: bool | None = None
    error: str | None = None  # the client's failure (type and message), when it failed
    storage: MemoryTokenStorage | None = None  # SDK client only: client registration and tokens
    tokens_before_refresh: Any = None  # SDK client with refresh_midway
    tools_after_refresh: list[str] | None = None
    log: str = ""  # mcp-remote only: what it printed on stderr

    @property
    def access_token(self) -> str | None:
        tokens = self.storage.tokens if self.storage else None
        return tokens.access_token if tokens else None

    def describe(self) -> str:
        browser = self.browser
        return json.dumps(
            {
                "authorization_url": self.authorization_url,
                "callback": self.callback,
                "tools": self.tools,
                "call": [self.call_text, self.call_is_error],
                "error": self.error,
                "browser": browser and {
                    "final_url": browser.final_url,
                    "status": browser.authorization_status,
                    "consent": browser.consent_heading,
                    "offered": browser.tools_offered,
                    "page": browser.page_text[:800],
                },
                "log": self.log[-3000:],
            },
            indent=1,
        )


class AuthorizationRefused(Exception):
    """The authorization response carried an error instead of a code."""


def _error_text(exc: BaseException) -> str:
    """An exception, with the leaves of exception groups, as one line per failure."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_error_text(inner) for inner in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


async def _use_client(client: Any, outcome: ClientOutcome, call: tuple[str, dict[str, Any]] | None) -> None:
    listed = await client.list_tools()
    outcome.tools = sorted(tool.name for tool in listed.tools)
    if call is not None:
        result = await client.call_tool(call[0], call[1])
        outcome.call_text = "".join(getattr(block, "text", "") for block in result.content)
        outcome.call_is_error = bool(result.is_error)


def sdk_client_metadata(redirect_uri: str, **extra: Any) -> Any:
    from mcp.shared.auth import OAuthClientMetadata

    return OAuthClientMetadata(
        client_name="Gatehouse test SDK client",
        redirect_uris=[redirect_uri],
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",
        **extra,
    )


async def sdk_flow(
    url: str,
    person: Person | None,
    *,
    browser: Any,
    decision: str = "allow",
    untick: Sequence[str] = (),
    call: tuple[str, dict[str, Any]] | None = ("echo", {"text": "hello through oauth"}),
    client_metadata_url: str | None = None,
    callback: CallbackServer | None = None,
    storage: MemoryTokenStorage | None = None,
    refresh_midway: bool = False,
    screenshot_dir: Path | None = None,
    timeout: float = FLOW_TIMEOUT_SECONDS,
) -> ClientOutcome:
    """The SDK client given only ``url``: discovery, DCR (or CIMD with ``client_metadata_url``),
    the person's consent in ``browser``, the token, then ``tools/list`` and ``call``. When the
    server asks again (a step-up after ``insufficient_scope``), the person consents again, this
    time without unticking anything (``untick`` applies to the first consent).

    With ``storage`` from an earlier outcome it reuses that registration and those tokens (no
    browser unless the server asks for authorization again; ``person=None`` makes that a failure),
    as a client restarted with what it saved does. ``refresh_midway``: after the first
    ``tools/list`` and call, the provider takes its access token for expired (as it does once
    ``expires_in`` has passed) and lists again, so it refreshes first; the tokens it held before
    are in ``outcome.tokens_before_refresh``, the second listing in ``outcome.tools_after_refresh``.
    (A provider built on saved tokens does not know when they were issued and has not discovered
    the token endpoint yet, so it never refreshes before a 401: it re-authorizes instead.)
    Never raises for the client's own failure: see ``ClientOutcome.error``."""
    import httpx2
    from mcp import Client
    from mcp.client.auth import OAuthClientProvider
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.auth import AuthorizationCodeResult

    outcome = ClientOutcome(storage=storage or MemoryTokenStorage())
    own_callback = callback is None
    callback = callback or CallbackServer()

    async def redirect_handler(authorization_url: str) -> None:
        outcome.authorization_url = authorization_url
        if person is None:
            raise FlowError(f"the client was sent to authorize again: {authorization_url}")
        outcome.browser = await decide_in_browser(
            browser, authorization_url, person, redirect_prefix=callback.url, decision=decision,
            untick=() if outcome.browsers else untick, screenshot_dir=screenshot_dir,
        )
        outcome.browsers.append(outcome.browser)

    async def callback_handler() -> AuthorizationCodeResult:
        try:
            params = await callback.wait(timeout=5.0)
        except FlowError:
            page = outcome.browser.page_text[:300] if outcome.browser else ""
            raise AuthorizationRefused(f"the browser did not reach the client; page: {page!r}") from None
        outcome.callback = params
        if "code" not in params:
            raise AuthorizationRefused(f"authorization response without a code: {params}")
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))

    provider = OAuthClientProvider(
        server_url=url,
        client_metadata=sdk_client_metadata(callback.url),
        storage=outcome.storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=client_metadata_url,
    )
    try:
        with _fail_after(timeout):
            http = httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(30, read=60))
            async with http, Client(streamable_http_client(url, http_client=http)) as client:
                await _use_client(client, outcome, call)
                if refresh_midway:
                    outcome.tokens_before_refresh = outcome.storage.tokens
                    provider.context.token_expiry_time = 1.0  # OAuthContext's own field: long past
                    listed = await client.list_tools(cache_mode="refresh")
                    outcome.tools_after_refresh = sorted(tool.name for tool in listed.tools)
    except Exception as exc:  # the outcome carries the failure; tests assert on it
        outcome.error = _error_text(exc)
        if outcome.callback is None:
            outcome.callback = callback.params()
    finally:
        if own_callback:
            callback.close()
    return outcome


@contextlib.contextmanager
def _fail_after(seconds: float):
    import anyio

    with anyio.fail_after(seconds):
        yield


# ---------------------------------------------------------------------------------------------
# mcp-remote (npm), as a stdio server the SDK's stdio client talks to
# ---------------------------------------------------------------------------------------------

_AUTHORIZE_LINE = re.compile(r"Please authorize this client by visiting:\s*\n(\S+)")


def mcp_remote_bin() -> Path:
    """The pinned mcp-remote CLI; runs ``npm ci`` in tests/clients when it is missing."""
    if not MCP_REMOTE_BIN.exists():
        import subprocess

        npm = shutil.which("npm")
        if npm is None:
            raise FlowError("npm is required for the mcp-remote tests (install Node.js 18+)")
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--prefix", str(CLIENTS_DIR)], check=True, timeout=300
        )
    return MCP_REMOTE_BIN


async def mcp_remote_flow(
    url: str,
    person: Person,
    *,
    browser: Any,
    home: Path,
    decision: str = "allow",
    untick: Sequence[str] = (),
    call: tuple[str, dict[str, Any]] | None = ("echo", {"text": "hello through mcp-remote"}),
    callback_port: int | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    screenshot_dir: Path | None = None,
    timeout: float = FLOW_TIMEOUT_SECONDS,
) -> ClientOutcome:
    """``mcp-remote <url> <port> --host 127.0.0.1`` under the SDK's stdio client, with ``home``
    as its HOME (tokens under ``home/.mcp-auth``). The authorization URL it prints goes to the
    browser; the consent sends the browser to mcp-remote's own callback on ``port``."""
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    from tests.support.processes import free_port

    port = callback_port or free_port()
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "mcp-remote.log"
    outcome = ClientOutcome()
    redirect_prefix = f"http://127.0.0.1:{port}/"
    server = StdioServerParameters(
        command=str(mcp_remote_bin()),
        args=[url, str(port), "--host", "127.0.0.1", "--transport", "http-only", "--auth-timeout", "60",
              *extra_args],
        env={
            "HOME": str(home),
            "MCP_REMOTE_CONFIG_DIR": str(home / ".mcp-auth"),
            # Never a real browser: `open` falls back to xdg-open, which runs $BROWSER.
            "BROWSER": "true",
            "DISPLAY": "",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            **(env or {}),
        },
        cwd=str(home),
    )
    client_done = asyncio.Event()

    async def person_side() -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        while not client_done.is_set():
            printed = log_path.read_text(errors="replace") if log_path.exists() else ""
            found = _AUTHORIZE_LINE.search(printed)
            if found:
                outcome.authorization_url = found.group(1)
                outcome.browser = await decide_in_browser(
                    browser, outcome.authorization_url, person, redirect_prefix=redirect_prefix,
                    decision=decision, untick=untick, screenshot_dir=screenshot_dir,
                )
                outcome.browsers.append(outcome.browser)
                if outcome.browser.final_url.startswith(redirect_prefix):
                    outcome.callback = outcome.browser.redirect_params
                return
            if asyncio.get_running_loop().time() > deadline:
                return
            await asyncio.sleep(0.1)

    async def client_side() -> None:
        try:
            with open(log_path, "w") as errlog, _fail_after(timeout):
                async with Client(stdio_client(server, errlog=errlog), mode="legacy") as client:
                    await _use_client(client, outcome, call)
        except Exception as exc:
            outcome.error = _error_text(exc)
        finally:
            client_done.set()

    person_task = asyncio.create_task(person_side())
    await client_side()
    try:
        await asyncio.wait_for(person_task, timeout=BROWSER_TIMEOUT_MS / 1000 * 2)
    except Exception as exc:
        outcome.error = (outcome.error or "") + f" [browser: {_error_text(exc)}]"
    outcome.log = log_path.read_text(errors="replace") if log_path.exists() else ""
    return outcome


# ---------------------------------------------------------------------------------------------
# CIMD: a test CA and an https document server on loopback
# ---------------------------------------------------------------------------------------------


@dataclass
class TestCA:
    """A throwaway certificate authority (``cryptography``), kept as PEM files in ``directory``."""

    __test__ = False  # not a pytest test class

    directory: Path
    cert: Any
    key: Any

    @classmethod
    def create(cls, directory: Path) -> TestCA:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        directory.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Gatehouse test CA")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                              data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                              encipher_only=False, decipher_only=False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        ca = cls(directory=directory, cert=cert, key=key)
        ca.cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        import certifi

        ca.bundle_path.write_text(
            Path(certifi.where()).read_text() + "\n# Gatehouse test CA\n" + ca.cert_path.read_text()
        )
        return ca

    @property
    def cert_path(self) -> Path:
        return self.directory / "test-ca.pem"

    @property
    def bundle_path(self) -> Path:
        """certifi's roots plus this CA."""
        return self.directory / "ca-bundle.pem"

    def trust_env(self) -> dict[str, str]:
        """Environment for a process (Gatehouse, python or node) that must trust this CA."""
        return {
            "SSL_CERT_FILE": str(self.bundle_path),
            "REQUESTS_CA_BUNDLE": str(self.bundle_path),
            "NODE_EXTRA_CA_CERTS": str(self.cert_path),
        }

    def issue(self, hosts: Sequence[str] = ("127.0.0.1", "localhost")) -> tuple[Path, Path]:
        """A server certificate for ``hosts`` (IP addresses or DNS names): (cert path, key path)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_path = self.directory / f"server-{x509.random_serial_number()}.pem"
        key_path = cert_path.with_suffix(".key")
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM) + self.cert_path.read_bytes())
        key_path.write_bytes(
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption())
        )
        return cert_path, key_path


class DocumentServer:
    """``https://127.0.0.1:<port>/...`` signed by a :class:`TestCA`, serving the JSON documents
    published on it (client metadata documents for CIMD) and recording every request path."""

    def __init__(self, ca: TestCA) -> None:
        self.documents: dict[str, bytes] = {}
        self.requests: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append(self.path)
                body = owner.documents.get(urlsplit(self.path).path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        cert_path, key_path = ca.issue()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = serving_thread(self._server)
        self._thread.start()

    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def publish(self, path: str, document: Mapping[str, Any] | bytes) -> str:
        """Serve ``document`` at ``path``; returns its URL."""
        self.documents[path] = document if isinstance(document, bytes) else json.dumps(document).encode()
        return self.base_url + path

    def publish_client(self, name: str, redirect_uris: Sequence[str], **metadata: Any) -> str:
        """A client metadata document whose ``client_id`` is its own URL; returns that URL."""
        url = f"{self.base_url}/clients/{name}.json"
        document = {
            "client_id": url,
            "client_name": f"CIMD {name}",
            "client_uri": self.base_url + "/",
            "redirect_uris": list(redirect_uris),
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            **metadata,
        }
        return self.publish(f"/clients/{name}.json", document)

    def fetches(self, url: str) -> int:
        """How many times the document at ``url`` was requested."""
        path = urlsplit(url).path
        return sum(1 for requested in self.requests if urlsplit(requested).path == path)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
