"""The request and its answer: what came in (``Incoming``, its inbound checks and bounded body),
the answer going out (``Responder``), the refusals and their one rendering (``render``), and the
request's metrics clock.

Public names are importable from here; each is imported from its module on first use, so
importing the package costs no more than importing the module that was asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from gateway.request.incoming import (
        ClientGone,
        Incoming,
        RawHeaders,
        check_declared_length,
        check_origin,
        read_body,
        wait_for_disconnect,
    )
    from gateway.request.refusals import (
        STREAM_ENDED_RPC_CODE,
        STREAM_TIMEOUT_RPC_CODE,
        BadRequest,
        BodyTooLarge,
        DatabaseUnavailable,
        InsufficientScope,
        InternalError,
        MethodNotAllowed,
        NoSuchPath,
        OriginNotAllowed,
        RateLimited,
        Refusal,
        SessionNotFound,
        Unauthorized,
        UnknownServer,
        UpstreamRejected,
        UpstreamStalled,
        UpstreamTimeout,
        UpstreamUnavailable,
        json_body,
        jsonrpc_body,
        render,
        stream_end_errors,
    )
    from gateway.request.responder import Responder

_HOMES = {
    "BadRequest": "gateway.request.refusals",
    "BodyTooLarge": "gateway.request.refusals",
    "ClientGone": "gateway.request.incoming",
    "DatabaseUnavailable": "gateway.request.refusals",
    "Incoming": "gateway.request.incoming",
    "InsufficientScope": "gateway.request.refusals",
    "InternalError": "gateway.request.refusals",
    "MethodNotAllowed": "gateway.request.refusals",
    "NoSuchPath": "gateway.request.refusals",
    "OriginNotAllowed": "gateway.request.refusals",
    "RateLimited": "gateway.request.refusals",
    "RawHeaders": "gateway.request.incoming",
    "Refusal": "gateway.request.refusals",
    "Responder": "gateway.request.responder",
    "STREAM_ENDED_RPC_CODE": "gateway.request.refusals",
    "STREAM_TIMEOUT_RPC_CODE": "gateway.request.refusals",
    "SessionNotFound": "gateway.request.refusals",
    "Unauthorized": "gateway.request.refusals",
    "UnknownServer": "gateway.request.refusals",
    "UpstreamRejected": "gateway.request.refusals",
    "UpstreamStalled": "gateway.request.refusals",
    "UpstreamTimeout": "gateway.request.refusals",
    "UpstreamUnavailable": "gateway.request.refusals",
    "check_declared_length": "gateway.request.incoming",
    "check_origin": "gateway.request.incoming",
    "json_body": "gateway.request.refusals",
    "jsonrpc_body": "gateway.request.refusals",
    "read_body": "gateway.request.incoming",
    "render": "gateway.request.refusals",
    "stream_end_errors": "gateway.request.refusals",
    "wait_for_disconnect": "gateway.request.incoming",
}
__all__ = [
    "STREAM_ENDED_RPC_CODE",
    "STREAM_TIMEOUT_RPC_CODE",
    "BadRequest",
    "BodyTooLarge",
    "ClientGone",
    "DatabaseUnavailable",
    "Incoming",
    "InsufficientScope",
    "InternalError",
    "MethodNotAllowed",
    "NoSuchPath",
    "OriginNotAllowed",
    "RateLimited",
    "RawHeaders",
    "Refusal",
    "Responder",
    "SessionNotFound",
    "Unauthorized",
    "UnknownServer",
    "UpstreamRejected",
    "UpstreamStalled",
    "UpstreamTimeout",
    "UpstreamUnavailable",
    "check_declared_length",
    "check_origin",
    "json_body",
    "jsonrpc_body",
    "read_body",
    "render",
    "stream_end_errors",
    "wait_for_disconnect",
]
__getattr__ = lazy_exports(__name__, _HOMES)
