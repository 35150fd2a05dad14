"""``manage.py rotate_token JTI [--grace 10m]``: the successor token is the last stdout line."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.cli import cli_actor, domain_errors
from tokens import selectors, services
from tokens.ttl import parse_grace


class Command(BaseCommand):
    help = (
        "Rotate a token: mint a successor with the same scope. The old token keeps working for "
        "--grace (default 0), then is refused. Prints the new token alone on the last line."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("reference", metavar="JTI|PREFIX")
        parser.add_argument("--grace", default="0", help="How long the old token stays valid: 0, 10m, 1h.")

    def handle(self, *args: Any, **options: Any) -> None:
        with domain_errors():
            grace = parse_grace(options["grace"])
            token = selectors.find_token(reference=options["reference"])
            issued = services.rotate_token(token=token, actor=cli_actor(), grace=grace)
        self.stdout.write(
            f"Rotated {token.display_prefix} {token.name!r}; successor {issued.token.display_prefix} "
            f"(old token accepted for {options['grace']}). It is shown only once:"
        )
        self.stdout.write(issued.secret)
