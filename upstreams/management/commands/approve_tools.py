"""``manage.py approve_tools SERVER [--all | TOOL...]``: approve current tool definitions."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.cli import cli_actor, domain_errors
from upstreams import pinning_services, selectors


class Command(BaseCommand):
    help = (
        "Approve the current definitions of a pinned server's tools (asked from the upstream now): "
        "each becomes listed and callable through the gateway while it stays unchanged."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("server", help="Server name.")
        parser.add_argument("tools", nargs="*", metavar="TOOL", help="Tool names to approve.")
        parser.add_argument("--all", action="store_true", help="Approve every tool the upstream lists now.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["all"] == bool(options["tools"]):
            raise CommandError("Name the tools to approve, or pass --all (not both).")
        server = selectors.get_server(name=options["server"])
        if server is None:
            raise CommandError(f"No server named {options['server']!r}.")
        with domain_errors():
            result = pinning_services.approve_tools(
                server=server, names=None if options["all"] else options["tools"], actor=cli_actor()
            )
        approved = ", ".join(result.approved) or "none"
        unchanged = ", ".join(result.unchanged) or "none"
        note = "" if server.pin_tools else " (tool pinning is off for this server: it has no effect yet)"
        self.stdout.write(f"Approved on {server.name}: {approved}; already approved: {unchanged}{note}")
