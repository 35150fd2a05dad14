"""``manage.py stdio_runner [--bind HOST] [--port N]``: host the stdio servers (``upstreams.stdio``).

Listens where ``GATEHOUSE_STDIO_RUNNER_URL`` points (default ``127.0.0.1:8001``) unless
``--bind``/``--port`` say otherwise (``--bind 0.0.0.0`` in a container that other hosts reach).
Runs until SIGTERM or Ctrl-C, and stops every stdio process it started before it exits.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import anyio
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from upstreams.stdio.runner import serve


class Command(BaseCommand):
    help = "Run the stdio MCP servers registered with --command and serve them to the gateway."

    def add_arguments(self, parser: CommandParser) -> None:
        where = urlsplit(settings.STDIO_RUNNER_URL)
        port = where.port or (443 if where.scheme == "https" else 80)
        parser.add_argument("--bind", default=where.hostname,
                            help=f"address to listen on (default {where.hostname})")
        parser.add_argument("--port", type=int, default=port,
                            help=f"port to listen on (default {port}, GATEHOUSE_STDIO_RUNNER_URL's)")

    def handle(self, *args: Any, bind: str, port: int, **options: Any) -> None:
        anyio.run(lambda: serve(host=bind, port=port, key=settings.STDIO_RUNNER_KEY))
