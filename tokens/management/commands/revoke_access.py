"""``manage.py revoke_access (--user U | --group G) [--servers a,b]``

Removes grants (of those servers, or all) and at once revokes the OAuth tokens and connections
that no longer fit in what is left.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.cli import cli_actor, domain_errors
from tokens.oauth.grant_subjects import add_subject_arguments, subject_of
from tokens.oauth.grants import revoke_access


class Command(BaseCommand):
    help = "Remove a user's or group's grants; their OAuth tokens beyond what is left are revoked."

    def add_arguments(self, parser: CommandParser) -> None:
        add_subject_arguments(parser)
        parser.add_argument("--servers", default="", metavar="a,b", help="Only these servers (default: all).")

    def handle(self, *args: Any, **options: Any) -> None:
        with domain_errors():
            user, group = subject_of(options)
            servers = [s.strip() for s in options["servers"].split(",") if s.strip()]
            removed = revoke_access(user=user, group=group, servers=servers, actor=cli_actor())
        self.stdout.write(f"Removed {removed} grant(s).")
