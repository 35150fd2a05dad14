"""``manage.py create_api_key --user U [--max-ttl 30d] [--servers a,b] [--tools t1,s:t2] [--name N]``

The key is printed alone on the last stdout line: ``KEY=$(manage.py create_api_key ... | tail -n1)``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from core.cli import cli_actor, domain_errors
from tokens.api_keys import create_api_key
from tokens.scope import TokenScope
from tokens.ttl import format_ttl, parse_ttl


class Command(BaseCommand):
    help = (
        "Create an API key for the REST API (CI). Prints a summary, then the key alone on the last "
        "line (shown only once)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--user", required=True, help="Username the key acts as (owner of what it mints)."
        )
        parser.add_argument("--name", default="", help="What the key is for (default: ci-<user>).")
        parser.add_argument(
            "--max-ttl",
            default="30d",
            help="Longest token the key may mint: 3600, 30m, 1h, 30d (default 30d).",
        )
        parser.add_argument(
            "--servers",
            default=None,
            metavar="a,b",
            help="Scope ceiling: servers the key may mint tokens for (default: any server).",
        )
        parser.add_argument(
            "--tools",
            default=None,
            metavar="t1,s:t2",
            help="Tool ceiling for --servers: tools apply to every server, 'server:tool' pins one "
            "(default: all tools of those servers).",
        )
        parser.add_argument("--expires-in", default="", help="Key lifetime, e.g. 90d (default: no expiry).")

    def handle(self, *args: Any, **options: Any) -> None:
        owner = get_user_model().objects.filter(username=options["user"], is_active=True).first()
        if owner is None:
            raise CommandError(f"No active user named {options['user']!r}.")
        servers = options["servers"].split(",") if options["servers"] is not None else None
        tools = options["tools"].split(",") if options["tools"] is not None else []
        if servers is not None and not any(s.strip() for s in servers):
            # An empty $SERVERS in a script must not turn into a key for every server.
            raise CommandError("--servers names no server; leave it out for a key that may mint for any.")
        if tools and servers is None:
            raise CommandError("--tools needs --servers: a tool ceiling is per server.")
        with domain_errors():
            ceiling = TokenScope.from_selection(servers=servers, tools=tools) if servers else None
            max_ttl = parse_ttl(options["max_ttl"])
            if max_ttl is None:
                raise CommandError(
                    "--max-ttl must be a duration; API keys cannot mint tokens that never expire."
                )
            expires_in = parse_ttl(options["expires_in"]) if options["expires_in"] else timedelta(0)
            if expires_in is None:
                expires_in = timedelta(0)
            created = create_api_key(
                name=options["name"] or f"ci-{owner.get_username()}",
                owner=owner,
                scope_ceiling=ceiling,
                max_ttl=max_ttl,
                expires_at=timezone.now() + expires_in if expires_in else None,
                actor=cli_actor(),
            )
        key = created.api_key
        ceiling_text = (
            ", ".join(f"{s}:{'*' if t is None else ','.join(t)}" for s, t in key.scope_ceiling.items())
            if key.scope_ceiling is not None
            else "any server"
        )
        expiry = key.expires_at.isoformat() if key.expires_at else "never"
        self.stdout.write(
            f"Created API key {key.display_prefix} {key.name!r} for {owner.get_username()} "
            f"(ceiling: {ceiling_text}; max TTL {format_ttl(timedelta(seconds=key.max_ttl_seconds))}; "
            f"key expires {expiry}). It is shown only once:"
        )
        self.stdout.write(created.secret)
