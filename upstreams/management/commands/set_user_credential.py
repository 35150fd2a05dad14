"""``manage.py set_user_credential SERVER USER [--remove]``: a person's own key for a server, from
stdin (for scripted set-ups; a key never goes on a command line, where ``ps`` and shell history see it)."""

from __future__ import annotations

import sys
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.cli import cli_actor, domain_errors
from upstreams.accounts import services
from upstreams.models import UpstreamServer


class Command(BaseCommand):
    help = "Set (value on stdin) or remove one person's own credential for a server. Never printed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("server")
        parser.add_argument("user")
        parser.add_argument("--remove", action="store_true", help="Disconnect instead.")

    def handle(self, *args: Any, **options: Any) -> None:
        server = UpstreamServer.objects.filter(name=options["server"]).first()
        if server is None:
            raise CommandError(f"No server named {options['server']!r}.")
        user = User.objects.filter(username=options["user"]).first()
        if user is None:
            raise CommandError(f"No user named {options['user']!r}.")
        if options["remove"]:
            removed = services.disconnect(user=user, server=server, actor=cli_actor(),
                                          reason="removed by an administrator")
            self.stdout.write(f"Disconnected {user.username} from {server.name}." if removed
                              else f"{user.username} had no connected account for {server.name}.")
            return
        value = sys.stdin.readline().strip()
        with domain_errors():
            services.connect_key(user=user, server=server, value=value, actor=cli_actor())
        header = server.user_credential_header
        self.stdout.write(f"Connected {user.username}'s key for {server.name} ({header}).")
