"""What one gateway request accumulates on its way through, and whom its audit rows name.

A ``Context`` is filled in by the admission step (credential, admission, session) and the flow
(JSON-RPC body, notes); ``subject`` turns it into the ``AuditSubject`` every row of the request
carries, whether the request was forwarded or refused (a refusal from inside admission brings
the token and server it had learned, see ``Refusal.with_subject``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from audit import events
from audit.services import record_later
from core.secrets_mask import TOKEN_PREFIX, token_display_prefix
from gateway.admission.credentials import Credential
from gateway.admission.rules import Admission
from gateway.mcp.protocol import RpcBody
from gateway.request import request_metrics
from gateway.request.incoming import Incoming
from gateway.request.refusals import Refusal
from gateway.request.responder import Responder
from tokens.assertions import forwarded_identity
from tokens.services import AuthenticatedToken


@dataclass(frozen=True)
class AuditSubject:
    """Who did it, to what, from where: the identity columns of a gateway audit row."""

    actor: str
    token_jti: str
    owner: str
    server: str
    client_ip: str | None
    user_agent: str
    session_id: str

    def fields(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(slots=True)
class ExchangeNotes:
    """What the flow learned about an exchange beyond its request and answer. Each field that was
    set becomes a key of the audit row's detail, under its own name; unset ones are left out."""

    # Why an open stream ended: "client_disconnect", or its watch's reason (``StreamWatch.reason``).
    ended_by: str | None = None
    # A ``tools/list`` answer was cut to the token's allowlist and pins.
    tools_filtered: bool | None = None
    # Stream events whose tool lists could not be checked, dropped instead of relayed.
    uncheckable_events_dropped: int | None = None
    # Later ``endpoint`` events of a legacy SSE upstream, dropped (a session's endpoint is fixed).
    endpoint_events_dropped: int | None = None
    # An upstream error answer replaced by the gateway's own: its status and the code given instead.
    upstream_status: int | None = None
    upstream_error: str | None = None
    # Requests the gateway cancelled upstream when it ended the stream (the upstream agreed).
    upstream_cancelled: int | None = None
    # Pending JSON-RPC requests answered with an error when the stream ended.
    pending_errored: int | None = None

    def detail(self) -> dict[str, Any]:
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name)) is not None}


@dataclass
class Context:
    incoming: Incoming
    credential: Credential | None = None
    admission: Admission | None = None
    rpc: RpcBody | None = None
    bytes_in: int = 0
    session_id: str = ""
    notes: ExchangeNotes = field(default_factory=ExchangeNotes)
    # The refusal this request was answered with, if any (its audit row, metrics and span say why).
    refused: Refusal | None = None
    # Ids of this request's JSON-RPC requests whose responses have been relayed (``_id_key`` form).
    answered: set[str] = field(default_factory=set)

    @property
    def raw_credential(self) -> str:
        return self.credential.raw if self.credential else ""

    @property
    def tool(self) -> str:
        if self.rpc is None:
            return ""
        return next((m.tool_name for m in self.rpc.messages if m.tool_name), "")

    @property
    def rpc_method(self) -> str:
        if self.rpc is None:
            return ""
        methods = [m.method or "response" for m in self.rpc.messages]
        return methods[0] if len(methods) == 1 else "batch:" + ",".join(methods[:10])

    def pending_request_ids(self) -> list[Any]:
        """Request ids the client sent in this body whose responses it has not been sent yet."""
        if self.rpc is None:
            return []
        return [rid for rid in self.rpc.request_ids() if _id_key(rid) not in self.answered]

    def note_relayed(self, data: str) -> None:
        """Remember the ids answered by one relayed SSE message (a response, or a batch of them)."""
        if self.rpc is None or not self.rpc.has_requests or len(self.answered) >= len(self.rpc.messages):
            return
        try:
            payload = json.loads(data)
        except ValueError:
            return
        for message in payload if isinstance(payload, list) else [payload]:
            if isinstance(message, dict) and "method" not in message and (
                "result" in message or "error" in message
            ):
                self.answered.add(_id_key(message.get("id")))

    def subject(self, refusal: Refusal | None = None) -> AuditSubject:
        """The audit identity: the admitted token and server, else what ``refusal`` learned of them."""
        token: AuthenticatedToken | None
        if self.admission is not None:
            token, server = self.admission.token, self.admission.server.name
        else:
            token = refusal.token if refusal is not None else None
            server = (refusal.server if refusal is not None else "") or self.incoming.server_name or ""
        if token is not None:
            actor, jti, owner = token.display_prefix, token.jti, token.owner_username
        else:
            actor = _unverified_actor(self.credential.raw) if self.credential else "anonymous"
            jti, owner = "", ""
        return AuditSubject(
            actor=actor,
            token_jti=jti,
            owner=owner,
            server=server[:64],
            client_ip=self.incoming.client_ip,
            user_agent=self.incoming.user_agent,
            session_id=self.session_id,
        )

    def record_exchange(self, responder: Responder) -> None:
        """Audit a forwarded exchange (``mcp.request``, or ``mcp.tool_call`` for a tool call)."""
        status = responder.status or 0
        if self.admission is not None:
            request_metrics.forwarded(server=self.admission.server.name, tool=self.tool[:200], status=status,
                              arrived=self.incoming.started)
        identity = (
            forwarded_identity(token=self.admission.token, server=self.admission.server)
            if self.admission is not None else None
        )
        record_later(
            event=events.MCP_TOOL_CALL if self.tool else events.MCP_REQUEST,
            tool=self.tool[:200],
            outcome="error" if status >= 400 else "success",  # an upstream refusal is not a success
            status=status or None,
            latency_ms=self.incoming.elapsed_ms(),
            detail={
                "method": self.incoming.method,
                "rpc_method": self.rpc_method,
                "bytes_in": self.bytes_in,
                "bytes_out": responder.bytes_out,
                **({"forwarded_identity": identity} if identity else {}),
                **self.notes.detail(),
            },
            **self.subject().fields(),
        )


def _id_key(request_id: Any) -> str:
    """A JSON-RPC id as a set key: ``1`` and ``"1"`` are different ids."""
    return json.dumps(request_id)


def _unverified_actor(raw: str) -> str:
    """Who a refused credential claims to be, for its audit row: a ``gth_`` token's display
    prefix; a bare JWT (a trusted issuer's, or a stranger's) only as such, since its ``jti`` is
    not ours and would look like one of our prefixes."""
    if not raw.startswith(TOKEN_PREFIX) and raw.count(".") == 2:
        return "external-jwt"
    return token_display_prefix(raw)
