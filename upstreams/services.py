"""Upstream server workflows: register, edit, enable/disable. Each change is audited.

Credentials (header values, URL secrets) are encrypted at rest and never audited: an audit row
names the header names and the redacted URL only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Literal

from django.core.exceptions import ValidationError
from django.db import transaction

from audit import events
from audit.services import record
from gatehouse import encryption
from upstreams import transports
from upstreams.exceptions import InvalidServerConfig
from upstreams.headers import merge_headers, parse_header_lines, validate_identity_header
from upstreams.models import DEFAULT_IDENTITY_HEADER, UpstreamServer
from upstreams.url import redacted_url, validate_upstream_url

_SERVER_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def _check_server_fields(*, name: str, url: str, transport: str, description: str) -> None:
    if not _SERVER_NAME_RE.match(name):
        raise InvalidServerConfig(
            "A server name is 1-64 lowercase letters, digits, '-' or '_' (clients use it in the gateway URL)."
        )
    try:
        validate_upstream_url(url)
    except ValidationError as exc:
        raise InvalidServerConfig(" ".join(exc.messages)) from exc
    if len(url) > 500:
        raise InvalidServerConfig("The URL is longer than 500 characters.")
    try:
        transports.get(transport)
    except transports.UnknownTransport as exc:
        raise InvalidServerConfig(str(exc)) from exc
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
) -> UpstreamServer:
    """Register an upstream; ``headers`` (credentials) are encrypted at rest and never audited.

    ``forward_identity``: every request to it carries a Gatehouse-signed identity assertion in
    ``identity_header``, which must not be one of ``headers`` (see ``validate_identity_header``).
    ``pin_tools``: its tools are listed and callable only once approved (``upstreams.pinning``).
    """
    name, url, description = name.strip(), url.strip(), description.strip()
    _check_server_fields(name=name, url=url, transport=transport, description=description)
    clean = _clean_headers(headers or {})
    identity_header = validate_identity_header(
        identity_header, forward_identity=forward_identity, configured=clean
    )
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
            },
        )
    return server


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
) -> UpstreamServer:
    """Change an upstream's endpoint, credentials or identity forwarding (None keeps a setting).

    The name is fixed: token scopes refer to it.
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
        if not changed:
            return server
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
            },
        )
    return server


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
