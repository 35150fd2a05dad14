"""``manage.py rotate_signing_key``: new tokens are signed with a new key; old ones still verify."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from core.cli import cli_actor, domain_errors
from tokens import signing_keys


class Command(BaseCommand):
    help = "Make a new signing key active. Retired keys keep verifying their tokens (see prune_signing_keys)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--algorithm", choices=settings.TOKEN_ALGORITHMS, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        with domain_errors():
            key = signing_keys.rotate_signing_key(actor=cli_actor(), algorithm=options["algorithm"])
        self.stdout.write(f"Active signing key is now {key.kid} ({key.algorithm}).")
