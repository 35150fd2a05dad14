"""Create the first console administrator, once, with a generated password printed once.

``make run`` calls this on every start. While any superuser exists it creates nothing and never
prints a password, so the credentials appear exactly once, on the first start of a database.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction


class Command(BaseCommand):
    help = "Create the first superuser with a generated password, unless a superuser exists."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--username", default="admin", help="name of the first admin (default: admin)")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        users = get_user_model()._default_manager
        with transaction.atomic():
            if users.filter(is_superuser=True).exists():
                self.stdout.write("An administrator already exists; not creating one.")
                return
            if users.filter(**{get_user_model().USERNAME_FIELD: username}).exists():
                self.stdout.write(
                    f"A user named {username!r} exists but no superuser does; "
                    "create one with `gatehouse createsuperuser`."
                )
                return
            password = secrets.token_urlsafe(18)
            users.create_superuser(username=username, email="", password=password)
        self.stdout.write(
            self.style.SUCCESS("Created the first Gatehouse administrator (shown only this once):")
        )
        self.stdout.write(f"  username: {username}")
        self.stdout.write(f"  password: {password}")
