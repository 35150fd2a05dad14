"""``manage.py grant_access (--user U | --group G) --servers a,b [--tools t1,s:t2] [--max-ttl 8h]``

What a person (or every member of a group) may get by themselves, through OAuth: the ceiling of
every such token. Granting again for a server replaces that server's grant; narrowing it revokes
the tokens and connections that exceed it.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from core.cli import cli_actor, domain_errors
from tokens.oauth.grant_subjects import add_subject_arguments, subject_of
from tokens.oauth.grants import grant_access
from tokens.ttl import format_ttl, parse_ttl


class Command(BaseCommand):
    help = "Let a user or group get tokens for servers (and tools) by themselves, through OAuth."

    def add_arguments(self, parser: CommandParser) -> None:
        add_subject_arguments(parser)
        parser.add_argument("--servers", required=True, metavar="a,b", help="Servers the grant covers.")
        parser.add_argument("--tools", default="", metavar="t1,s:t2",
                            help="Tools on those servers ('server:tool' pins one; default: all tools).")
        parser.add_argument("--max-ttl", default="", help="Longest token lifetime, e.g. 8h "
                            "(default: GATEHOUSE_OAUTH_ACCESS_TTL).")

    def handle(self, *args: Any, **options: Any) -> None:
        with domain_errors():
            user, group = subject_of(options)
            max_ttl = parse_ttl(options["max_ttl"], name="--max-ttl") if options["max_ttl"] else None
            grants = grant_access(
                user=user, group=group, servers=options["servers"].split(","),
                tools=[t for t in options["tools"].split(",") if t.strip()] if options["tools"] else [],
                max_ttl=max_ttl, actor=cli_actor(),
            )
        for grant in grants:
            tools = ", ".join(grant.tools) if grant.tools is not None else "all tools"
            ttl = format_ttl(max_ttl) if max_ttl else "default lifetime"
            self.stdout.write(f"Granted {grant.subject} -> {grant.server}: {tools} ({ttl}).")
