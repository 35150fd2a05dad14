"""Upstream MCP servers: where the gateway forwards, how (the transport), with which credentials.

The model holds the invariants (credentials never stored in clear, a known transport); the
workflows live in ``upstreams.services``.
"""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db import models

from core import encryption
from upstreams import transports, user_credentials
from upstreams.url import redacted_url, validate_upstream_url

DEFAULT_IDENTITY_HEADER = "Authorization"


class UpstreamServer(models.Model):
    name = models.SlugField(max_length=64, unique=True, help_text="Used in /mcp/<name>/.")
    # Not URLField: Django's validator refuses TLD-less hosts such as docker-compose service names.
    # Never holds a credential: a URL with a password or a query is kept here redacted (what every
    # page and audit row shows) and whole in ``url_encrypted``; ``target_url`` is what is dialled.
    url = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_upstream_url],
        help_text="The upstream MCP endpoint (http or https); empty for a stdio server.",
    )
    url_encrypted = models.TextField(blank=True, default="")
    # A name from the transport registry (``upstreams.transports``); checked on save, not by a
    # database constraint, so a new transport is one registry entry.
    transport = models.CharField(max_length=16, choices=transports.choices, default=transports.DEFAULT.name)
    description = models.CharField(max_length=200, blank=True)
    # Fernet-encrypted JSON object of header name -> value, added to every upstream request.
    headers_encrypted = models.TextField(blank=True, default="")
    # Identity to upstreams: each request carries a Gatehouse-signed assertion of who calls
    # (``tokens.assertions``) in ``identity_header`` (``Authorization: Bearer`` by default).
    forward_identity = models.BooleanField(
        default=False, help_text="Send a signed identity assertion (who calls) with every request."
    )
    identity_header = models.CharField(
        max_length=64,
        default=DEFAULT_IDENTITY_HEADER,
        help_text="The header that carries the assertion (Authorization: Bearer …, or the bare JWT).",
    )
    # stdio servers (``upstreams.stdio``): what the runner starts. The command is shown in the
    # console (secrets belong in the environment); environment values are Fernet-encrypted JSON.
    command = models.TextField(blank=True, default="")
    env_encrypted = models.TextField(blank=True, default="")
    cwd = models.CharField(max_length=500, blank=True, default="")
    isolation = models.CharField(
        max_length=16, default="shared",
        choices=[("shared", "one process for all sessions"), ("session", "one process per session")],
    )
    max_processes = models.PositiveIntegerField(default=10)
    # Connected accounts (``upstreams.user_credentials``): a kind from that registry ("" = none),
    # the header each caller's own credential goes in and, for a provider kind, the provider
    # (``user_oauth`` holds no secret; the client secret is encrypted apart).
    user_credential = models.CharField(max_length=16, blank=True, default="")
    user_credential_header = models.CharField(max_length=64, blank=True, default="")
    user_oauth = models.JSONField(default=dict, blank=True)
    user_oauth_secret_encrypted = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    # Tool pinning: only tools whose definition matches an ``ApprovedTool`` are listed or callable.
    pin_tools = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        # Kept from when the model lived in ``tokens``: the move changed no table.
        db_table = "tokens_upstreamserver"

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        transports.get(self.transport)  # raises UnknownTransport: no writer stores an unknown one
        _ = self.user_credential_kind  # raises InvalidServerConfig for an unknown kind
        fields = kwargs.get("update_fields")
        if fields is None:
            self._seal_url()
        elif "url" in fields and self._seal_url():
            kwargs["update_fields"] = {*fields, "url_encrypted"}
        super().save(*args, **kwargs)

    def _seal_url(self) -> bool:
        """Keep the credentials of ``url`` in ``url_encrypted`` only; True if either changed."""
        shown = redacted_url(self.url)
        if shown != self.url:
            self.url_encrypted, self.url = encryption.encrypt(self.url), shown
            return True
        if self.url_encrypted and redacted_url(self.target_url) != self.url:
            self.url_encrypted = ""  # replaced by a URL that has no credentials
            return True
        return False

    @property
    def transport_spec(self) -> transports.Transport:
        return transports.get(self.transport)

    @property
    def user_credential_kind(self) -> user_credentials.UserCredentialKind | None:
        """The kind of credential each caller brings to this server, or None (the server's own)."""
        return user_credentials.get(self.user_credential) if self.user_credential else None

    @property
    def is_stdio(self) -> bool:
        return self.transport_spec.hosted

    @property
    def client_path(self) -> str:
        """The gateway path clients use for this server, e.g. ``/mcp/<name>/``."""
        return self.transport_spec.client_path(self.name)

    @property
    def target_url(self) -> str:
        """The URL to dial, credentials included. Raises ``RuntimeError`` if it cannot be decrypted."""
        return _decrypt_url(self.url_encrypted) if self.url_encrypted else self.url


class StdioStatus(models.Model):
    """What the stdio runner last reported for one stdio server (console, ``/ready``)."""

    class State(models.TextChoices):
        STARTING = "starting"
        RUNNING = "running"
        RESTARTING = "restarting"
        FAILED = "failed"
        IDLE = "idle"
        STOPPED = "stopped"

    server = models.OneToOneField(
        UpstreamServer, on_delete=models.CASCADE, primary_key=True, related_name="stdio_status"
    )
    state = models.CharField(max_length=16, choices=State.choices)
    processes = models.PositiveIntegerField(default=0)
    restarts = models.PositiveIntegerField(default=0)
    # The last stderr line of the server's process, masked by the runner.
    last_error = models.CharField(max_length=300, blank=True, default="")
    # The runner rewrites every row it hosts every few seconds: an old one means no runner reports.
    reported_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.server_id}: {self.state}"

    def is_current(self, now: datetime) -> bool:
        """Whether a runner reported this recently enough to be believed."""
        return (now - self.reported_at).total_seconds() <= STDIO_STATUS_STALE_SECONDS


# A runner reports every 2 s; three missed reports and more mean it is not running.
STDIO_STATUS_STALE_SECONDS = 10


class ApprovedTool(models.Model):
    """The approved definition of one tool of a pinned server (``upstreams.pinning``)."""

    server = models.ForeignKey(UpstreamServer, on_delete=models.CASCADE, related_name="approved_tools")
    name = models.CharField(max_length=200)
    definition = models.JSONField()
    hash = models.CharField(max_length=64)
    # The hash of the definition a gateway process last saw listed ("" until one is seen).
    last_seen_hash = models.CharField(max_length=64, blank=True, default="")
    approved_at = models.DateTimeField()
    approved_by = models.CharField(max_length=150)

    class Meta:
        ordering = ["server", "name"]
        constraints = [models.UniqueConstraint(fields=["server", "name"], name="approved_tool_unique")]

    def __str__(self) -> str:
        return f"{self.server_id}:{self.name}"


class ToolChange(models.Model):
    """A definition seen on a pinned server that is not the approved one: new or changed."""

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        REJECTED = "rejected"

    server = models.ForeignKey(UpstreamServer, on_delete=models.CASCADE, related_name="tool_changes")
    name = models.CharField(max_length=200)
    definition = models.JSONField()
    hash = models.CharField(max_length=64)
    # The approved hash when it was first seen ("" for a tool never approved).
    approved_hash = models.CharField(max_length=64, blank=True, default="")
    diff = models.TextField(blank=True, default="")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    first_seen_at = models.DateTimeField()
    decided_at = models.DateTimeField(null=True, blank=True)
    decided_by = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        ordering = ["server", "name", "-first_seen_at"]
        constraints = [
            models.UniqueConstraint(fields=["server", "name", "hash"], name="tool_change_unique")
        ]

    def __str__(self) -> str:
        return f"{self.server_id}:{self.name}:{self.hash[:12]} ({self.status})"

    @property
    def is_new_tool(self) -> bool:
        return not self.approved_hash


# The gateway reads ``target_url`` on every request: decrypt each stored URL once per process,
# as ``upstreams.target`` does for header values (a new ciphertext is a new key).
_decrypt_url = lru_cache(maxsize=256)(encryption.decrypt)


# Connected accounts live in their own package; imported here so Django registers them with this app.
from upstreams.accounts.models import ConnectedAccount  # noqa: E402

__all__ = ["ApprovedTool", "ConnectedAccount", "StdioStatus", "ToolChange", "UpstreamServer"]
