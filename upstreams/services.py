"""Upstream server workflows: register, edit, enable/disable. Each change is audited.

Credentials (header values, URL secrets) are encrypted at rest and never audited: an audit row
names the header names and the redacted URL only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from audit import events
from audit.services import record
from core import encryption
from upstreams import transports
from upstreams.accounts import services as accounts
from upstreams.exceptions import InvalidServerConfig
from upstreams.headers import merge_headers, parse_header_lines, validate_identity_header
from upstreams.models import DEFAULT_IDENTITY_HEADER, StdioStatus, UpstreamServer
from upstreams.stdio.command import DEFAULT_MAX_PROCESSES, check_stdio_settings, parse_command
from upstreams.stdio.report import ServerStatus
from upstreams.url import redacted_url, validate_upstream_url
from upstreams.user_credentials import UserCredentialSettings

_SERVER_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _check_server_fields(*, name: str, url: str, transport: str, description: str) -> None:
    if not _SERVER_NAME_RE.match(name):
        raise InvalidServerConfig(
            "A server name is 1-64 lowercase letters, digits, '-' or '_' (clients use it in the gateway URL)."
        )
    try:
        spec = transports.get(transport)
    except transports.UnknownTransport as exc:
        raise InvalidServerConfig(str(exc)) from exc
    if spec.hosted:
        if url:
            raise InvalidServerConfig(
                f"A {spec.name} server has no URL: Gatehouse runs its command (give --command, not a URL)."
            )
    else:
        try:
            validate_upstream_url(url)
        except ValidationError as exc:
            raise InvalidServerConfig(" ".join(exc.messages)) from exc
    if len(url) > 500:
        raise InvalidServerConfig("The URL is longer than 500 characters.")
    if len(description) > 200:
        raise InvalidServerConfig("The description is longer than 200 characters.")


def _clean_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return parse_header_lines(f"{name}: {value}" for name, value in headers.items())


def create_server(
    *,
    name: str,
    url: str,
    actor: str,
    transport: str = transports.DEFAULT.name,
    headers: Mapping[str, str] | None = None,
    description: str = "",
    forward_identity: bool = False,
    identity_header: str = DEFAULT_IDENTITY_HEADER,
    client_ip: str | None = None,
    pin_tools: bool = False,
    stdio: StdioSettings | None = None,
    user_credential: UserCredentialSettings | None = None,
) -> UpstreamServer:
    """Register an upstream; ``headers`` (credentials) are encrypted at rest and never audited.

    ``forward_identity``: every request to it carries a Gatehouse-signed identity assertion in
    ``identity_header``, which must not be one of ``headers`` (see ``validate_identity_header``).
    ``pin_tools``: its tools are listed and callable only once approved (``upstreams.pinning``).
    ``stdio``: what the runner starts for a stdio server (``transport="stdio"``, no URL); its
    environment values are encrypted like header values and only their names are audited.
    ``user_credential``: each caller brings their own credential (``upstreams.user_credentials``).
    """
    name, url, description = name.strip(), url.strip(), description.strip()
    _check_server_fields(name=name, url=url, transport=transport, description=description)
    stdio = _check_stdio(transport=transport, stdio=stdio, forward_identity=forward_identity)
    clean = _clean_headers(headers or {})
    identity_header = validate_identity_header(
        identity_header, forward_identity=forward_identity, configured=clean
    )
    personal = (user_credential or UserCredentialSettings()).checked(
        static_headers=clean, identity_header=identity_header if forward_identity else None
    )
    if personal.kind is not None and transports.get(transport).hosted:
        raise InvalidServerConfig("A stdio server gets no HTTP headers, so no personal credential either.")
    with transaction.atomic():
        if UpstreamServer.objects.filter(name=name).exists():
            raise InvalidServerConfig(f"A server named {name!r} already exists.")
        server = UpstreamServer.objects.create(
            name=name,
            url=url,
            transport=transport,
            description=description,
            headers_encrypted=encryption.encrypt_json(clean),
            forward_identity=forward_identity,
            identity_header=identity_header,
            pin_tools=pin_tools,
            **stdio.fields(),
            **personal.fields(),
        )
        record(
            event=events.SERVER_CREATED,
            actor=actor,
            server=name,
            client_ip=client_ip,
            detail={
                "url": redacted_url(url),
                "transport": transport,
                "header_names": sorted(clean),
                "forward_identity": forward_identity,
                "identity_header": identity_header,
                "enabled": True,
                "pin_tools": pin_tools,
                **stdio.audited(hosted=transports.get(transport).hosted),
                **personal.audited(),
            },
        )
    return server


@dataclass(frozen=True)
class StdioSettings:
    """A stdio server's settings as typed (``add_server --command … --env K=V``, console, API)."""

    command: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str = ""
    isolation: str = "shared"
    max_processes: int = DEFAULT_MAX_PROCESSES

    def __repr__(self) -> str:  # environment values are secrets
        return f"StdioSettings(command={self.command[:40]!r}, env_names={sorted(self.env)!r})"

    def fields(self) -> dict[str, object]:
        """The model fields, environment encrypted."""
        return {
            "command": self.command.strip(),
            "env_encrypted": encryption.encrypt_json(dict(self.env)) if self.env else "",
            "cwd": self.cwd.strip(),
            "isolation": self.isolation,
            "max_processes": self.max_processes,
        }

    def changed_since(self, before: StdioSettings) -> list[str]:
        """The names of the settings that differ (``env`` for any environment change)."""
        return [
            name for name in ("command", "env", "cwd", "isolation", "max_processes")
            if getattr(self, name) != getattr(before, name)
        ]

    def audited(self, *, hosted: bool) -> dict[str, object]:
        """What an audit row may say: the program, the environment's names, never a value."""
        if not hosted:
            return {}
        return {
            "program": parse_command(self.command)[0],
            "env_names": sorted(self.env),
            "cwd": self.cwd.strip(),
            "isolation": self.isolation,
            "max_processes": self.max_processes,
        }


def _check_stdio(*, transport: str, stdio: StdioSettings | None, forward_identity: bool) -> StdioSettings:
    stdio = stdio or StdioSettings()
    if not transports.get(transport).hosted:
        if stdio.command.strip() or stdio.env or stdio.cwd.strip():
            raise InvalidServerConfig(
                "A command, environment or working directory is only for stdio servers (--transport stdio)."
            )
        return StdioSettings()
    check_stdio_settings(
        command=stdio.command, env=stdio.env, cwd=stdio.cwd.strip(), isolation=stdio.isolation,
        max_processes=stdio.max_processes,
    )
    if forward_identity:
        raise InvalidServerConfig(
            "A stdio server gets no HTTP headers, so there is no identity to forward to it."
        )
    return stdio


def update_server(
    *,
    server: UpstreamServer,
    actor: str,
    url: str | None = None,
    transport: str | None = None,
    description: str | None = None,
    set_headers: Mapping[str, str] | None = None,
    remove_headers: Sequence[str] = (),
    forward_identity: bool | None = None,
    identity_header: str | None = None,
    client_ip: str | None = None,
    stdio: StdioChanges | None = None,
    user_credential: UserCredentialSettings | None = None,
) -> UpstreamServer:
    """Change an upstream's endpoint, credentials or identity forwarding (None keeps a setting).
    ``user_credential`` replaces what each caller brings (``accounts.reconfigure``).

    The name is fixed: token scopes refer to it. ``stdio`` changes a stdio server's command,
    environment (values set or names removed), working directory, isolation or process cap; the
    runner restarts its processes with the new settings within seconds.
    """
    with transaction.atomic():
        server = UpstreamServer.objects.select_for_update().get(pk=server.pk)
        current_url = server.target_url
        new_url = current_url if url is None else url.strip()
        new_transport = server.transport if transport is None else transport
        new_description = server.description if description is None else description.strip()
        _check_server_fields(
            name=server.name, url=new_url, transport=new_transport, description=new_description
        )
        current = encryption.decrypt_json(server.headers_encrypted)
        cleaned = _clean_headers(set_headers or {})
        headers = merge_headers(current, set_headers=cleaned, remove=remove_headers)
        new_forward = server.forward_identity if forward_identity is None else forward_identity
        new_identity_header = validate_identity_header(
            server.identity_header if identity_header is None else identity_header,
            forward_identity=new_forward,
            configured=headers,
        )
        if user_credential is not None:
            user_credential = user_credential.checked(
                static_headers=headers, identity_header=new_identity_header if new_forward else None
            )
        personal = user_credential.header if user_credential is not None else server.user_credential_header
        if personal and transports.get(new_transport).hosted:
            raise InvalidServerConfig("A stdio server gets no HTTP headers, nor a personal credential.")
        taken = {h.lower() for h in headers} | {new_identity_header.lower() if new_forward else ""}
        if personal and personal.lower() in taken:
            raise InvalidServerConfig(
                f"Each caller's own credential goes in {personal}; "
                "a static or identity header cannot use it too."
            )
        changed = [
            field
            for field, before, after in (
                ("url", current_url, new_url),
                ("transport", server.transport, new_transport),
                ("description", server.description, new_description),
                ("forward_identity", server.forward_identity, new_forward),
                ("identity_header", server.identity_header, new_identity_header),
            )
            if before != after
        ]
        headers_changed = headers != current
        if headers_changed:
            changed.append("headers")
        stdio_before = _stdio_settings(server)
        stdio_after = (stdio or StdioChanges()).apply(stdio_before)
        _check_stdio(transport=new_transport, stdio=stdio_after, forward_identity=new_forward)
        changed += stdio_after.changed_since(stdio_before)
        if user_credential is not None and accounts.reconfigure(
            server=server, settings=user_credential, actor=actor, client_ip=client_ip
        ):
            changed.append("user_credential")
        if not changed:
            return server
        for name, value in stdio_after.fields().items():
            setattr(server, name, value)
        server.url, server.transport, server.description = new_url, new_transport, new_description
        server.forward_identity, server.identity_header = new_forward, new_identity_header
        if headers_changed:
            server.headers_encrypted = encryption.encrypt_json(headers)
        server.save()
        removed = sorted(n for n in current if n.lower() not in {h.lower() for h in headers})
        record(
            event=events.SERVER_UPDATED,
            actor=actor,
            server=server.name,
            client_ip=client_ip,
            detail={
                "changed": changed,
                "url": redacted_url(new_url),
                "transport": new_transport,
                "header_names": sorted(headers),
                "headers_set": sorted(cleaned),
                "headers_removed": removed,
                "forward_identity": new_forward,
                "identity_header": new_identity_header,
                **stdio_after.audited(hosted=transports.get(new_transport).hosted),
                **(user_credential.audited() if user_credential is not None else {}),
            },
        )
    return server


def _stdio_settings(server: UpstreamServer) -> StdioSettings:
    env = encryption.decrypt_json(server.env_encrypted) if server.env_encrypted else {}
    return StdioSettings(
        command=server.command, env=env, cwd=server.cwd, isolation=server.isolation,
        max_processes=server.max_processes,
    )


@dataclass(frozen=True)
class StdioChanges:
    """Changes to a stdio server's settings (None keeps a setting)."""

    command: str | None = None
    set_env: Mapping[str, str] = field(default_factory=dict)
    remove_env: Sequence[str] = ()
    cwd: str | None = None
    isolation: str | None = None
    max_processes: int | None = None

    def __repr__(self) -> str:  # environment values are secrets
        return f"StdioChanges(set_env={sorted(self.set_env)!r}, remove_env={list(self.remove_env)!r})"

    def apply(self, current: StdioSettings) -> StdioSettings:
        env = {k: v for k, v in current.env.items() if k not in set(self.remove_env)}
        env.update(self.set_env)
        return StdioSettings(
            command=current.command if self.command is None else self.command.strip(),
            env=env,
            cwd=current.cwd if self.cwd is None else self.cwd.strip(),
            isolation=current.isolation if self.isolation is None else self.isolation,
            max_processes=current.max_processes if self.max_processes is None else self.max_processes,
        )


def set_server_flag(
    *, server: UpstreamServer, field: Literal["enabled", "pin_tools"], value: bool, actor: str,
    client_ip: str | None = None,
) -> tuple[UpstreamServer, bool]:
    """Set one on/off setting of a server and audit the change; returns the row and whether it changed."""
    with transaction.atomic():
        server = UpstreamServer.objects.select_for_update().get(pk=server.pk)
        if getattr(server, field) == value:
            return server, False
        setattr(server, field, value)
        server.save(update_fields=[field, "updated_at"])
        record(
            event=events.SERVER_UPDATED,
            actor=actor,
            server=server.name,
            client_ip=client_ip,
            detail={"changed": [field], field: value},
        )
    return server, True


def set_server_enabled(
    *, server: UpstreamServer, enabled: bool, actor: str, client_ip: str | None = None
) -> UpstreamServer:
    """Disable (the gateway refuses new traffic; tokens keep their scope) or re-enable an upstream."""
    server, _ = set_server_flag(
        server=server, field="enabled", value=enabled, actor=actor, client_ip=client_ip
    )
    return server


def record_stdio_statuses(*, reports: Sequence[ServerStatus], broken: Mapping[str, str]) -> None:
    """The stdio runner's report: one ``StdioStatus`` row per server it hosts (or cannot run).

    Rewritten every report, so ``reported_at`` says the runner is alive; not audited (state, not
    an action; the runner logs each exit and restart).
    """
    now = timezone.now()
    rows = {r.server: r for r in reports}
    ids = dict(UpstreamServer.objects.filter(name__in=[*rows, *broken]).values_list("name", "pk"))
    for name, pk in ids.items():
        report = rows.get(name)
        if report is not None:
            values = {"state": report.state, "processes": report.processes, "restarts": report.restarts,
                      "last_error": report.last_error[:300]}
        else:
            values = {"state": StdioStatus.State.FAILED, "processes": 0, "restarts": 0,
                      "last_error": broken[name][:300]}
        StdioStatus.objects.update_or_create(server_id=pk, defaults={**values, "reported_at": now})
