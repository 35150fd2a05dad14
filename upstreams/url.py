"""Upstream endpoint URLs: what we accept, and how we show one without its credentials."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit

from django.core.exceptions import ValidationError

_MASK = "***"


def validate_upstream_url(value: str) -> None:
    """An absolute http(s) URL with a host; TLD-less hosts (``http://everything:3001/mcp``) are fine."""
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port that is not a number
    except ValueError as exc:
        raise ValidationError("Enter a valid http:// or https:// URL.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("Enter an absolute http:// or https:// URL, e.g. http://127.0.0.1:3001/mcp.")
    if port == 0 or any(ch.isspace() for ch in value):
        raise ValidationError("Enter a valid http:// or https:// URL.")
    if parts.fragment:
        raise ValidationError("An upstream URL cannot have a #fragment.")


def redacted_url(value: str) -> str:
    """The URL with any password and every query value masked: safe for audit rows and pages.

    Works on the raw text rather than a parsed URL, so even a malformed value (a password with a
    ``/`` in it) is masked.
    """
    scheme, sep, rest = value.partition("://")
    if not sep:
        scheme, rest = "", value
    rest = rest.split("#", 1)[0]
    location, _, query = rest.partition("?")
    if "@" in location:
        userinfo, host = location.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        keep_user = colon and "/" not in user
        location = f"{user}:{_MASK}@{host}" if keep_user else f"{_MASK}@{host}"
    masked_query = urlencode([(k, _MASK) for k, _ in parse_qsl(query, keep_blank_values=True)], safe="*")
    shown = f"{scheme}://{location}" if sep else location
    return f"{shown}?{masked_query}" if masked_query else shown
