"""``manage.py add_server NAME URL [--transport streamable|sse] [--header K:V]...
[--forward-identity [--identity-header NAME]] [--pin-tools] [--user-credential header:NAME | oauth
--oauth-authorize-url U --oauth-token-url U --oauth-client-id ID --oauth-client-secret S
[--oauth-scopes S] [--oauth-header NAME]]``, and for a stdio server
``manage.py add_server NAME --command "CMD ARGS" [--env K=V]... [--cwd DIR]
[--isolation shared|session] [--max-processes N]``"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.cli import cli_actor, domain_errors
from upstreams import pinning_services, services, transports
from upstreams.headers import parse_header_lines
from upstreams.models import DEFAULT_IDENTITY_HEADER
from upstreams.stdio.command import (
    DEFAULT_MAX_PROCESSES,
    ISOLATIONS,
    check_program_exists,
    parse_command,
    parse_env_lines,
)
from upstreams.url import redacted_url
from upstreams.user_credentials import OAuthProvider, UserCredentialSettings, spec_forms


class Command(BaseCommand):
    help = "Register an upstream MCP server. Header values are stored encrypted and never printed."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "name", help="Server name; clients reach it at /mcp/<name>/ (/sse/<name>/ for legacy SSE)."
        )
        parser.add_argument(
            "url", nargs="?", default="",
            help="Upstream MCP endpoint, e.g. http://127.0.0.1:3001/mcp (none for a stdio server)",
        )
        parser.add_argument(
            "--transport",
            choices=transports.names(),
            default=None,
            help=f"default {transports.DEFAULT.name}, or {transports.STDIO.name} with --command",
        )
        stdio = parser.add_argument_group("stdio servers (run by Gatehouse's stdio runner)")
        stdio.add_argument(
            "--command", default="", metavar='"CMD ARGS"',
            help='The command to run, e.g. "uvx mcp-server-fetch" (split like a shell would; '
            "no shell runs it).",
        )
        stdio.add_argument(
            "--env", action="append", default=[], metavar="K=V",
            help="Environment variable for the process (repeatable). Values are stored encrypted, "
            "never printed.",
        )
        stdio.add_argument("--cwd", default="", metavar="DIR", help="Working directory (absolute).")
        stdio.add_argument(
            "--no-check-command", action="store_true",
            help="Do not check that the command's program is on PATH (for a stdio runner that runs "
            "elsewhere, with another PATH).",
        )
        stdio.add_argument(
            "--isolation", choices=ISOLATIONS, default="shared",
            help="shared: one process serves every session; session: one process per MCP session.",
        )
        stdio.add_argument(
            "--max-processes", type=int, default=DEFAULT_MAX_PROCESSES, metavar="N",
            help=f"With --isolation session, at most N processes (default {DEFAULT_MAX_PROCESSES}); "
            "a session over it gets 503.",
        )
        parser.add_argument(
            "--header", action="append", default=[], metavar="K:V",
            help="Header added to every upstream request (repeatable), e.g. 'Authorization: Bearer x'.",
        )
        parser.add_argument("--description", default="")
        parser.add_argument(
            "--forward-identity", action="store_true",
            help="Send a Gatehouse-signed JWT saying who calls (iss, aud = URL, sub = token owner, "
            "scope, sid) with every request, verifiable with /.well-known/jwks.json.",
        )
        parser.add_argument(
            "--identity-header", default=None, metavar="NAME",
            help=f"Header that carries it (default {DEFAULT_IDENTITY_HEADER}: Bearer <jwt>; any other "
            "header gets the bare JWT). Needed when --header already sets Authorization.",
        )
        parser.add_argument(
            "--pin-tools", action="store_true",
            help="Only approved tool definitions are listed or callable (approve with approve_tools).",
        )
        personal = parser.add_argument_group("connected accounts (each person's own credential)")
        personal.add_argument(
            "--user-credential", default="", metavar=" | ".join(spec_forms()),
            help="Each caller's own credential goes in this header: a key they paste on My access "
            "(header:NAME), or an OAuth token from the upstream's provider (oauth).",
        )
        for option, metavar in (("authorize-url", "URL"), ("token-url", "URL"), ("client-id", "ID"),
                                ("client-secret", "SECRET"), ("scopes", "'S1 S2'"), ("header", "NAME")):
            personal.add_argument(f"--oauth-{option}", default="", metavar=metavar)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["identity_header"] is not None and not options["forward_identity"]:
            raise CommandError("--identity-header needs --forward-identity.")
        transport = options["transport"] or (
            transports.STDIO.name if options["command"] else transports.DEFAULT.name
        )
        with domain_errors():
            if options["command"] and not options["no_check_command"]:
                check_program_exists(command=options["command"], env=parse_env_lines(options["env"]),
                                     cwd=options["cwd"])
            headers = parse_header_lines(options["header"])
            stdio = services.StdioSettings(
                command=options["command"], env=parse_env_lines(options["env"]), cwd=options["cwd"],
                isolation=options["isolation"], max_processes=options["max_processes"],
            )
            oauth = {o: options[f"oauth_{o}"]
                     for o in ("authorize_url", "token_url", "client_id", "client_secret", "scopes")}
            personal = UserCredentialSettings(
                spec=options["user_credential"],
                oauth=OAuthProvider(**oauth) if any(oauth.values()) else None,
                oauth_header=options["oauth_header"],
            )
            server = services.create_server(
                user_credential=personal,
                name=options["name"],
                url=options["url"],
                transport=transport,
                stdio=stdio,
                headers=headers,
                description=options["description"],
                forward_identity=options["forward_identity"],
                identity_header=options["identity_header"] or DEFAULT_IDENTITY_HEADER,
                actor=cli_actor(),
                pin_tools=options["pin_tools"],
            )
        path = server.client_path
        if server.is_stdio:
            env = ", ".join(sorted(stdio.env)) or "none"
            pinned = "; tools pinned: approve them (approve_tools) once it runs" if server.pin_tools else ""
            self.stdout.write(
                f"Added stdio server {server.name}: {parse_command(server.command)[0]} "
                f"({server.isolation} isolation); environment: {env}; the stdio runner starts it "
                f"(gatehouse stdio_runner, in make run); clients use {path}{pinned}"
            )
            return
        offered = pinning_services.offer_current_tools(server=server) if server.pin_tools else 0
        names = ", ".join(sorted(headers)) or "none"
        identity = f"; identity forwarded in {server.identity_header}" if server.forward_identity else ""
        if server.user_credential:
            identity += (f"; each person's own {server.user_credential} credential in "
                         f"{server.user_credential_header} (connect on /console/me/)")
        self.stdout.write(
            f"Added server {server.name}: {redacted_url(server.url)} ({server.transport}); "
            f"headers: {names}{identity}; clients use {path}"
            + (f"; tools pinned, {offered} offered for approval (approve_tools)" if server.pin_tools else "")
        )
