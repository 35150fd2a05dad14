"""``manage.py prune_signing_keys``: drop retired keys that no usable token needs any more."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from core.cli import cli_actor
from tokens import signing_keys


class Command(BaseCommand):
    help = "Delete retired signing keys whose tokens have all expired, been revoked or rotated out."

    def handle(self, *args: Any, **options: Any) -> None:
        pruned = signing_keys.prune_signing_keys(actor=cli_actor())
        self.stdout.write(f"Pruned {len(pruned)} retired key(s){': ' + ', '.join(pruned) if pruned else ''}.")
