"""``manage.py revoke_subject ISSUER SUB [--restore]``"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.cli import cli_actor, domain_errors
from tokens.issuers import selectors, services


class Command(BaseCommand):
    help = ("Cut an external subject off: no more exchanges or direct use, and every token it holds revoked "
            "(open streams close within a second). --restore takes it off the deny list.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("issuer", metavar="ISSUER", help="The trusted issuer's name.")
        parser.add_argument("subject", metavar="SUB",
                            help="The sub claim, e.g. repo:acme/app:ref:refs/heads/main.")
        parser.add_argument("--restore", action="store_true", help="Allow the subject again.")

    def handle(self, *args: Any, **options: Any) -> None:
        with domain_errors():
            issuer = selectors.issuer_by_name(options["issuer"])
            if options["restore"]:
                services.restore_subject(issuer=issuer, subject=options["subject"], actor=cli_actor())
                self.stdout.write(f"Restored {issuer.name}:{options['subject']}.")
                return
            count = services.revoke_subject(issuer=issuer, subject=options["subject"], actor=cli_actor())
        self.stdout.write(f"Revoked {issuer.name}:{options['subject']} and {count} token(s) it held.")
