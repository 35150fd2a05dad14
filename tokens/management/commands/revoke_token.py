"""``manage.py revoke_token JTI|PREFIX [--reason TEXT]``"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.cli import cli_actor, domain_errors
from tokens import selectors, services


class Command(BaseCommand):
    help = "Revoke a token now, by jti or display prefix (gth_1a2b3c4d). Open streams close within a second."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("reference", metavar="JTI|PREFIX")
        parser.add_argument("--reason", default="", help="Why (kept in the audit log).")

    def handle(self, *args: Any, **options: Any) -> None:
        with domain_errors():
            token = selectors.find_token(reference=options["reference"])
            token = services.revoke_token(token=token, actor=cli_actor(), reason=options["reason"])
        self.stdout.write(f"Revoked {token.display_prefix} {token.name!r} ({token.owner.get_username()}).")
