"""What the gateway reads in an MCP request: the JSON-RPC body, and the headers that must agree with it.

Authorization always reads the body. The routing headers of the 2026-07-28 revision
(``Mcp-Method``, ``Mcp-Name``, ``Mcp-Param-*``, ``MCP-Protocol-Version``) are only checked for
agreement with it: a header that disagrees is refused, never trusted. The gateway keeps its own
copy of the few protocol constants it needs instead of importing the SDK at runtime.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

HANDSHAKE_VERSIONS = frozenset({"2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"})
MODERN_VERSIONS = frozenset({"2026-07-28"})

SESSION_HEADER = "mcp-session-id"
PROTOCOL_VERSION_HEADER = "mcp-protocol-version"
METHOD_HEADER = "mcp-method"
NAME_HEADER = "mcp-name"
CANCELLED_NOTIFICATION = "notifications/cancelled"
PARAM_HEADER_PREFIX = "mcp-param-"
ROUTING_HEADERS = frozenset({SESSION_HEADER, PROTOCOL_VERSION_HEADER, METHOD_HEADER, NAME_HEADER})

META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
# Method -> the params key mirrored in the Mcp-Name header.
NAME_BEARING_METHODS = {"tools/call": "name", "prompts/get": "name", "resources/read": "uri"}

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
HEADER_MISMATCH = -32020

_B64_SENTINEL = re.compile(r"^=\?base64\?(?P<payload>.*)\?=$")


class MalformedMessage(Exception):
    """The body is not JSON-RPC the gateway can authorize."""

    def __init__(self, code: int, message: str, request_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True)
class RpcMessage:
    """One JSON-RPC object from a request body."""

    raw: dict[str, Any]

    @property
    def method(self) -> str | None:
        method = self.raw.get("method")
        return method if isinstance(method, str) else None

    @property
    def id(self) -> Any:
        return self.raw.get("id")

    @property
    def is_request(self) -> bool:
        return self.method is not None and "id" in self.raw

    @property
    def params(self) -> dict[str, Any]:
        params = self.raw.get("params")
        return params if isinstance(params, dict) else {}

    @property
    def tool_name(self) -> str | None:
        if self.method != "tools/call":
            return None
        name = self.params.get("name")
        return name if isinstance(name, str) else None

    @property
    def meta_protocol_version(self) -> str | None:
        meta = self.params.get("_meta")
        version = meta.get(META_PROTOCOL_VERSION) if isinstance(meta, dict) else None
        return version if isinstance(version, str) else None


@dataclass(frozen=True)
class RpcBody:
    messages: tuple[RpcMessage, ...]
    is_batch: bool

    @property
    def single(self) -> RpcMessage | None:
        return self.messages[0] if not self.is_batch and self.messages else None

    @property
    def is_initialize(self) -> bool:
        return any(m.method == "initialize" for m in self.messages)

    @property
    def has_requests(self) -> bool:
        return any(m.is_request for m in self.messages)

    def request_ids(self) -> list[Any]:
        return [m.id for m in self.messages if m.is_request]

    def protocol_version(self, header: str | None) -> str | None:
        """The revision the request speaks: its MCP-Protocol-Version header (``header``), else
        the one its body's ``_meta`` names (2026-07-28 requests carry it there)."""
        return header or (self.single.meta_protocol_version if self.single else None)


class _RepeatedKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        raise _RepeatedKey()
    return found


def parse_body(body: bytes) -> RpcBody:
    """Decode a POST body into JSON-RPC messages, or raise ``MalformedMessage``.

    The original bytes go upstream, so a body parsers may read differently is refused: with a
    repeated key (``"name": "secret_tool", "name": "echo"``) Python keeps the last, others the first.
    """
    try:
        decoded = json.loads(body, object_pairs_hook=_unique_keys)
    except _RepeatedKey as exc:
        raise MalformedMessage(
            INVALID_REQUEST, "The body repeats a key in one object; send each key once."
        ) from exc
    except (UnicodeDecodeError, ValueError) as exc:
        raise MalformedMessage(PARSE_ERROR, "Parse error: the body is not valid JSON.") from exc
    except RecursionError as exc:  # not a ValueError: json gives up on deep nesting this way
        raise MalformedMessage(PARSE_ERROR, "Parse error: the body is nested too deeply.") from exc
    if isinstance(decoded, list):
        if not decoded:
            raise MalformedMessage(INVALID_REQUEST, "An empty batch is not a valid request.")
        return RpcBody(messages=tuple(_message(item) for item in decoded), is_batch=True)
    return RpcBody(messages=(_message(decoded),), is_batch=False)


def _message(item: Any) -> RpcMessage:
    if not isinstance(item, dict) or item.get("jsonrpc") != "2.0":
        raise MalformedMessage(INVALID_REQUEST, "Not a JSON-RPC 2.0 message.")
    request_id = item.get("id")
    if ("id" in item and not (request_id is None or isinstance(request_id, (str, int)))) or isinstance(
        request_id, bool
    ):
        raise MalformedMessage(INVALID_REQUEST, "A JSON-RPC id must be a string or a number.")
    has_method = "method" in item
    if has_method and not isinstance(item["method"], str):
        raise MalformedMessage(INVALID_REQUEST, "A JSON-RPC method must be a string.", request_id)
    if not has_method and "result" not in item and "error" not in item:
        raise MalformedMessage(
            INVALID_REQUEST, "Not a JSON-RPC request, notification or response.", request_id
        )
    if "params" in item and not isinstance(item["params"], (dict, list)):
        raise MalformedMessage(INVALID_REQUEST, "JSON-RPC params must be an object.", request_id)
    message = RpcMessage(raw=item)
    if message.method == "tools/call" and message.tool_name is None:
        raise MalformedMessage(INVALID_PARAMS, "tools/call needs params.name.", request_id)
    return message


def decode_header_value(value: str) -> str | None:
    """Undo the ``=?base64?…?=`` wrapping clients use for non-ASCII header values."""
    match = _B64_SENTINEL.fullmatch(value)
    if match is None:
        return value
    try:
        decoded = base64.b64decode(match.group("payload"), validate=True)
        return decoded.decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None


def _rendered_scalars(value: Any) -> Iterator[str]:
    if isinstance(value, bool):
        yield "true" if value else "false"
    elif isinstance(value, (int, str)):
        yield str(value)
    elif isinstance(value, float) and value.is_integer():
        yield str(int(value))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _rendered_scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _rendered_scalars(item)


def check_headers_agree(body: RpcBody, headers: Iterable[tuple[str, str]]) -> None:
    """Refuse routing headers that disagree with the body (``HEADER_MISMATCH``).

    ``headers`` are (lower-case name, value) pairs. A routing header sent twice is refused too,
    since first-copy and last-copy readers would disagree.
    """
    single = body.single
    request_id = single.id if single is not None else None
    seen: dict[str, str] = {}
    params: list[tuple[str, str]] = []
    for name, value in headers:
        if name in ROUTING_HEADERS:
            if name in seen:
                raise MalformedMessage(
                    HEADER_MISMATCH, f"The {name} header appears more than once.", request_id
                )
            seen[name] = value
        elif name.startswith(PARAM_HEADER_PREFIX):
            params.append((name, value))

    def mismatch(what: str) -> MalformedMessage:
        return MalformedMessage(
            HEADER_MISMATCH, f"The {what} header does not match the request body.", request_id
        )

    header_version = seen.get(PROTOCOL_VERSION_HEADER)
    routing_present = METHOD_HEADER in seen or NAME_HEADER in seen or params
    if body.is_batch:
        if routing_present:
            raise mismatch("Mcp-Method/Mcp-Name")
        return
    assert single is not None
    body_version = single.meta_protocol_version
    if header_version is not None and body_version is not None and header_version != body_version:
        raise mismatch("MCP-Protocol-Version")
    if header_version in MODERN_VERSIONS and body_version is None and single.is_request:
        raise mismatch("MCP-Protocol-Version")
    if METHOD_HEADER in seen and seen[METHOD_HEADER] != (single.method or ""):
        raise mismatch("Mcp-Method")
    name_key = NAME_BEARING_METHODS.get(single.method or "")
    if NAME_HEADER in seen:
        body_name = single.params.get(name_key) if name_key else None
        if not isinstance(body_name, str) or decode_header_value(seen[NAME_HEADER]) != body_name:
            raise mismatch("Mcp-Name")
    if params:
        if single.method != "tools/call":
            raise mismatch("Mcp-Param")
        # The gateway does not hold each tool's schema, so it checks the weaker but safe
        # property: every Mcp-Param value must be a value the body actually carries.
        arguments = single.params.get("arguments")
        carried = set(_rendered_scalars(arguments if isinstance(arguments, dict) else {}))
        for name, value in params:
            if decode_header_value(value) not in carried:
                raise mismatch(name)
