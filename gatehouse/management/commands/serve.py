"""``manage.py serve``: the one way to start Gatehouse's web process.

``make run`` (through the Procfile), the container image, docker compose, the README and the
tests' live servers all start the web process with this command, so there is one start-up line to
get right instead of one per place.

What it gets right:

- **No raw credentials in any log.** It runs daphne in this process through daphne's Python API
  with no access logger at all. Daphne's own access log (on at daphne's default verbosity) prints
  each request's raw URI, so a client using the ``?key=gth_…`` fallback would have its token
  written in clear. The only access log is Gatehouse's, one JSON line per request with the query
  string masked (gatehouse/access_log.py), and there is no switch here to turn daphne's back on.
- **A fresh data dir just works.** It prepares the data dir first (``prepare_data_dir``), so a new
  container or checkout starts with this one command.
- The port defaults to ``$PORT`` (as ``make run`` and the container set it), else 8000;
  ``--proxy-headers`` takes the client address and scheme from the load balancer's
  ``X-Forwarded-For``/``-Port``/``-Proto``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.module_loading import import_string

from core.data_dir import DataDir, read_secret_key
from core.environment import StrictEnv

logger = logging.getLogger("gatehouse.serve")

DEFAULT_PORT = 8000


class Command(BaseCommand):
    help = (
        "Serve the console, REST API and MCP gateway with daphne (gatehouse.asgi:application): "
        "prepare the data dir, then listen, with only Gatehouse's masked access log."
    )
    # Checked in handle(), once the data dir is prepared: the data-dir check would fail before.
    requires_system_checks = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bind", default="127.0.0.1",
                            help="address to listen on (default 127.0.0.1; 0.0.0.0 in a container)")
        parser.add_argument("--port", type=int, default=None,
                            help=f"port to listen on (default $PORT, else {DEFAULT_PORT})")
        parser.add_argument("--server", choices=sorted(_SERVERS), default=None,
                            help="ASGI server: daphne (default) or uvicorn; or $GATEHOUSE_ASGI_SERVER")
        parser.add_argument("--proxy-headers", action="store_true",
                            help="behind a load balancer: client address and scheme from its "
                                 "X-Forwarded-For, X-Forwarded-Port and X-Forwarded-Proto headers")

    def handle(
        self, *args: Any, bind: str, port: int | None, server: str | None, proxy_headers: bool, **options: Any
    ) -> None:
        if port is None:
            try:
                port = StrictEnv().positive_int("PORT", default=DEFAULT_PORT)
            except ImproperlyConfigured as exc:
                raise CommandError(str(exc)) from exc

        data_dir = DataDir.from_settings(settings)
        created = data_dir.prepare()
        if created:
            logger.info("prepared the data dir %s", data_dir.root,
                        extra={"created_paths": [str(path) for path in created]})
        if not _settings_have_secret_key():
            _start_over(data_dir)

        self.check()
        # The application is imported only now, after the data dir is prepared and checked.
        application = import_string(settings.ASGI_APPLICATION)
        chosen = server or settings.ASGI_SERVER
        if not _SERVERS[chosen](application, bind=bind, port=port, proxy_headers=proxy_headers):
            raise CommandError(f"{chosen} could not listen on {bind}:{port}; see the log above.")


def _run_daphne(application: Any, *, bind: str, port: int, proxy_headers: bool) -> bool:
    # daphne.server installs Twisted's asyncio reactor when imported; the daphne app in
    # INSTALLED_APPS has already imported it, first, as that requires.
    from daphne.endpoints import build_endpoint_description_strings
    from daphne.server import Server
    from twisted.internet import defer, reactor

    from upstreams.http import close_upstream_client

    def close_clients() -> defer.Deferred[None]:
        return defer.Deferred.fromFuture(asyncio.ensure_future(close_upstream_client()))

    # On SIGTERM or Ctrl-C, close the upstream client while the loop still runs (no "Unclosed
    # client session" errors in the log of a clean stop). The interface's stub types it oddly.
    cast(Any, reactor).addSystemEventTrigger("before", "shutdown", close_clients)

    server = Server(
        application=application,
        endpoints=build_endpoint_description_strings(host=bind, port=port),
        # No access logger: daphne's prints raw query strings. gatehouse.access logs instead.
        action_logger=None,
        # 0 also sends Twisted's own log nowhere; daphne's Python loggers still reach our handlers.
        verbosity=0,
        proxy_forwarded_address_header="X-Forwarded-For" if proxy_headers else None,
        proxy_forwarded_port_header="X-Forwarded-Port" if proxy_headers else None,
        proxy_forwarded_proto_header="X-Forwarded-Proto" if proxy_headers else None,
    )
    server.run()
    return not server.abort_start


def _run_uvicorn(application: Any, *, bind: str, port: int, proxy_headers: bool) -> bool:
    import uvicorn

    from upstreams.http import close_upstream_client

    class _ClosingUvicornServer(uvicorn.Server):
        """uvicorn's server, closing the upstream client after its own shutdown, on its loop."""

        async def shutdown(self, sockets: list[Any] | None = None) -> None:
            await super().shutdown(sockets=sockets)
            await close_upstream_client()

    config = uvicorn.Config(
        application, host=bind, port=port,
        # No access log (uvicorn's prints raw query strings) and no logging setup of its own:
        # gatehouse.access logs each request, masked, through our handlers.
        access_log=False, log_config=None,
        # Channels' router has no lifespan protocol.
        lifespan="off",
        # Off unless asked (uvicorn trusts 127.0.0.1's X-Forwarded-For by default; daphne does not).
        proxy_headers=proxy_headers, forwarded_allow_ips="*" if proxy_headers else None,
        server_header=False,
    )
    server = _ClosingUvicornServer(config)
    server.run()
    return server.started


# The ASGI servers Gatehouse runs under, by name (``--server``, ``GATEHOUSE_ASGI_SERVER``).
_SERVERS = {"daphne": _run_daphne, "uvicorn": _run_uvicorn}


def _settings_have_secret_key() -> bool:
    try:
        return bool(settings.SECRET_KEY)
    except ImproperlyConfigured:  # Django's refusal of an empty key
        return False


def _start_over(data_dir: DataDir) -> None:
    """Run this same command line again, in this process, now that the key exists.

    Settings are read once, at import, and this process read them before the data dir had a
    key: SECRET_KEY, and ENCRYPTION_KEY derived from it, are empty here. Starting over (same pid,
    so honcho, containers and tests keep their handle on it) reads them as every later start will.
    """
    if data_dir.secret_key_file is None or not read_secret_key(data_dir.secret_key_file):
        raise CommandError(f"No secret key after preparing {data_dir.root}; set GATEHOUSE_SECRET_KEY.")
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os.execv(sys.executable, sys.orig_argv)  # noqa: S606 - our own command line, no shell
