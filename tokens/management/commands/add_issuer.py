"""``manage.py add_issuer NAME --issuer URL --audience AUD --servers a,b [--tools t1,t2]
[--rule CLAIM=VALUE]... [--max-ttl 1h] [--direct] [--algorithms RS256,ES256]``

Reads the issuer's discovery document first: an issuer that cannot be discovered is not added.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.cli import cli_actor, domain_errors
from tokens.exceptions import InvalidTokenRequest
from tokens.issuers import services
from tokens.issuers.claim_rules import parse_rule
from tokens.issuers.models import ASYMMETRIC_ALGORITHMS, DEFAULT_ALGORITHMS
from tokens.scope import TokenScope, split_names
from tokens.ttl import format_ttl, parse_ttl


class Command(BaseCommand):
    help = "Trust an OpenID Connect issuer: its tokens can be exchanged (with --direct, used) here."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="Short name; its subjects' tokens are owned by NAME:sub.")
        parser.add_argument("--issuer", required=True, metavar="URL",
                            help="The exact iss of its tokens (https, or http to a loopback address).")
        parser.add_argument("--audience", required=True, metavar="AUD", help="The aud its tokens must carry.")
        parser.add_argument("--servers", required=True, metavar="a,b", help="Servers its tokens may reach.")
        parser.add_argument("--tools", default="", metavar="t1,t2",
                            help="Allowed tools on every server ('server:tool' pins one); omit for all.")
        parser.add_argument("--rule", action="append", default=[], metavar="CLAIM=VALUE",
                            help="A claim the token must carry with that value (repeatable; all must hold).")
        parser.add_argument("--max-ttl", default="1h", help="Longest life of a minted token (default 1h).")
        parser.add_argument("--direct", action="store_true",
                            help="The gateway also accepts its JWTs as bearer tokens.")
        parser.add_argument("--algorithms", default=",".join(DEFAULT_ALGORITHMS),
                            help=f"Allowed signing algorithms, from {', '.join(ASYMMETRIC_ALGORITHMS)}.")

    def handle(self, *args: Any, **options: Any) -> None:
        with domain_errors():
            scope = TokenScope.from_selection(servers=split_names(options["servers"]),
                                              tools=split_names(options["tools"]))
            max_ttl = parse_ttl(options["max_ttl"], name="max-ttl")
            if max_ttl is None:
                raise InvalidTokenRequest("max-ttl cannot be 'never'.")
            issuer = services.create_issuer(
                config=services.IssuerSettings(
                    name=options["name"], issuer=options["issuer"], audience=options["audience"], scope=scope,
                    rules=[parse_rule(rule) for rule in options["rule"]], max_ttl=max_ttl,
                    direct=options["direct"], algorithms=split_names(options["algorithms"]),
                ),
                actor=cli_actor(),
            )
        rules = ", ".join(f"{claim}={value}" for claim, value in issuer.rules) or "none"
        self.stdout.write(
            f"Trusting {issuer.name}: {issuer.issuer} (aud {issuer.audience}; servers "
            f"{', '.join(sorted(issuer.scope))}; rules {rules}; max ttl {format_ttl(issuer.max_ttl)}; "
            f"{'direct use allowed' if issuer.direct else 'exchange only'})."
        )
