"""``manage.py issue_token --name N --owner USER --server S [--server S2]... [--tools t1,t2] [--ttl 7d]``

The token is printed alone on the last stdout line: ``TOKEN=$(manage.py issue_token ... | tail -n1)``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.cli import cli_actor, domain_errors
from tokens import services
from tokens.scope import TokenScope
from tokens.ttl import format_ttl, parse_ttl


class Command(BaseCommand):
    help = "Issue a token. Prints a summary, then the token alone on the last line (shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True, help="What the token is for, e.g. ci-nightly.")
        parser.add_argument("--owner", required=True, help="Username of the owner (the token's sub).")
        parser.add_argument(
            "--server", action="append", required=True, metavar="S",
            help="A server the token may use (repeatable).",
        )
        parser.add_argument(
            "--tools", action="append", default=[], metavar="t1,t2",
            help="Allowed tools, comma-separated; they apply to every --server, 'server:tool' pins one "
            "to a server. Omit for all tools.",
        )
        parser.add_argument(
            "--ttl", default=format_ttl(settings.TOKEN_DEFAULT_TTL),
            help="Lifetime: seconds, 30m, 12h, 7d (default %(default)s); 'never' if allowed.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        owner = get_user_model().objects.filter(username=options["owner"], is_active=True).first()
        if owner is None:
            raise CommandError(f"No active user named {options['owner']!r}.")
        tools = [t for spec in options["tools"] for t in spec.split(",")]
        with domain_errors():
            scope = TokenScope.from_selection(servers=options["server"], tools=tools)
            ttl = parse_ttl(options["ttl"])
            issued = services.issue_token(
                name=options["name"], owner=owner, scope=scope, ttl=ttl, actor=cli_actor()
            )
        token = issued.token
        expires = token.expires_at.isoformat() if token.expires_at else "never"
        self.stdout.write(
            f"Issued {token.display_prefix} {token.name!r} for {owner.get_username()} "
            f"(servers: {', '.join(token.server_names)}; expires {expires}). It is shown only once:"
        )
        self.stdout.write(issued.secret)
