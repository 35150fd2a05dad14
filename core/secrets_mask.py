"""Find credentials in free text and replace them with a non-secret display form.

Used by the log filter, the access log and the audit writer: one masking rule everywhere.
A Gatehouse token is shown as its display prefix (``gth_`` + the first 8 characters of its
``jti``), so an operator can still tell tokens apart without being able to use them. An API key
keeps its public id (``gthk_<id>_***``). Masking is idempotent: masked text masks to itself.
"""

from __future__ import annotations

import base64
import functools
import json
import re
from urllib.parse import unquote_plus

TOKEN_PREFIX = "gth_"
API_KEY_PREFIX = "gthk_"
MASK = "***"

# Query parameters (and cookies) whose value is a credential whatever it looks like.
# ``code`` is an OAuth authorization code (the console's OIDC callback): single-use, still a secret.
CREDENTIAL_PARAMS = frozenset({
    "key", "api_key", "apikey", "access_token", "token", "sessionid", "code", "id_token", "subject_token",
    "client_secret",
})

_GTH_RE = re.compile(r"gth_[A-Za-z0-9_.\-]+")
_API_KEY_RE = re.compile(r"gthk_[A-Za-z0-9_\-]+")
_API_KEY_PARTS_RE = re.compile(r"gthk_([A-Za-z0-9]{1,16})_(.*)", re.DOTALL)
# A JWT anywhere, even glued to other text (``%67th_eyJ…`` has no word boundary before it).
_BARE_JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
# ``key=value`` after a query/cookie delimiter, also when the URL itself is percent-encoded
# (``%3Fkey%3D…`` inside a ``next=`` parameter). ``monkey=`` or ``sort_key=`` are not credentials.
_PARAM_NAMES = "|".join(sorted(CREDENTIAL_PARAMS, key=len, reverse=True))
_QUERY_KEY_RE = re.compile(
    rf"(?i)((?:(?<![A-Za-z0-9_.%-])|(?<=%26)|(?<=%3F)|(?<=%3B))(?:{_PARAM_NAMES})(?:=|%3D))"
    r"((?:(?!%26|%23)[^&#;\s\"'<>])+)"
)
# Header-shaped credentials: ``Authorization: Bearer x``, ``"x-api-key": "x"``, Django's
# ``'HTTP_AUTHORIZATION': '…'``, and ASGI's ``(b'authorization', b'…')``.
_HEADER_NAME = r"(?:proxy[-_])?authorization|x[-_]api[-_]key"
_SCHEME_AND_VALUE = r"((?:bearer|basic|token|digest|negotiate|dpop|apikey)\s+)?([^\s\"',;}\])]+)"
_HEADER_RE = re.compile(rf"(?i)((?:{_HEADER_NAME})[\"']?\s*[:=]\s*[\"']?){_SCHEME_AND_VALUE}")
_HEADER_PAIR_RE = re.compile(rf"(?i)([\"'](?:{_HEADER_NAME})[\"']\s*,\s*b?[\"']){_SCHEME_AND_VALUE}")


# Field names (headers, dict keys, form fields) whose value is secret whatever it looks like.
_CREDENTIAL_FIELDS = frozenset({
    "authorization", "proxy-authorization", "x-api-key", "api-key", "apikey", "cookie", "set-cookie",
    "password", "passwd", "secret", "client-secret", "access-token", "refresh-token",
})


@functools.lru_cache(maxsize=4096)  # field names repeat (every log line's keys): decide each once
def is_credential_field(name: str | bytes) -> bool:
    """``Authorization``, ``HTTP_X_API_KEY``, ``b"cookie"``, ``password``…: a secret-valued name."""
    if isinstance(name, bytes):
        name = name.decode("latin-1")
    normalized = name.strip().lower().replace("_", "-")
    return normalized.removeprefix("http-") in _CREDENTIAL_FIELDS


def mask_field(name: str | bytes, value: str) -> str:
    """``value`` of a field called ``name``: fully masked for credential fields."""
    if is_credential_field(name) and not _already_masked(value):
        return MASK
    return mask_secrets(value)


def display_prefix_for_jti(jti: str) -> str:
    return f"{TOKEN_PREFIX}{jti[:8]}"


def token_display_prefix(raw_token: str) -> str:
    """Display prefix of a ``gth_`` token, read from its unverified payload; never the secret."""
    jwt_part = raw_token[len(TOKEN_PREFIX):] if raw_token.startswith(TOKEN_PREFIX) else raw_token
    try:
        payload_b64 = jwt_part.split(".")[1]
        payload = json.loads(base64.urlsafe_b64decode(payload_b64 + "=" * (-len(payload_b64) % 4)))
        jti = str(payload["jti"])
    except (IndexError, ValueError, KeyError, TypeError):
        return f"{TOKEN_PREFIX}{MASK}"
    if not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", jti):
        return f"{TOKEN_PREFIX}{MASK}"
    return display_prefix_for_jti(jti) + "…"


# Every pattern below needs one of these in the text: ``gth_``/``gthk_``, a JWT's ``eyJ``, a
# ``key=`` (also ``%3D``), or a header name (``authorization``, ``x-api-key``). Most log strings
# (a method, a path, an IP, a user agent) have none, and are returned after this one search
# instead of six substitutions (``make bench``: the access log is on every request).
_MAY_HOLD_CREDENTIAL = re.compile(r"gth|eyJ|=|%3[dD]|(?i:authorization|api)")


def mask_secrets(text: str) -> str:
    """Replace every credential in ``text`` by its display form."""
    if not text or not _MAY_HOLD_CREDENTIAL.search(text):
        return text
    # JWT-bearing forms first: another rule could otherwise eat the start of a token and leave
    # its signature behind (``gthk_gth_eyJ…``).
    text = _GTH_RE.sub(_mask_gth, text)
    text = _BARE_JWT_RE.sub(MASK, text)
    text = _API_KEY_RE.sub(_mask_api_key, text)
    text = _QUERY_KEY_RE.sub(_mask_param, text)
    text = _HEADER_RE.sub(_mask_header, text)
    return _HEADER_PAIR_RE.sub(_mask_header, text)


# ``password=…``, ``secret: …``, ``"api_key": "…"`` in free text (an upstream's error page, a
# traceback): the value after a credential-named key.
_NAMED_VALUE_RE = re.compile(
    r"(?i)([\"']?\b(?:password|passwd|pwd|secret|client[-_]secret|access[-_]token|refresh[-_]token|"
    r"api[-_]?key)\b[\"']?\s*[:=]\s*[\"']?)([^\s\"',;&}\])]+)"
)


def mask_free_text(text: str) -> str:
    """``mask_secrets`` plus the values of credential-named keys, for text nobody vetted (an
    upstream's error body): more masked than needed is fine there."""
    return _NAMED_VALUE_RE.sub(lambda m: m.group(1) + MASK, mask_secrets(text))


def mask_query_string(query: str) -> str:
    """A raw query string with credential values masked, also when names or values are
    percent-encoded (``k%65y=…``, ``key=%67th_…``) — the way a server decodes them."""
    if not query:
        return query
    pairs = []
    for pair in query.split("&"):
        name, sep, value = pair.partition("=")
        decoded_name = unquote_plus(name).strip().lower()
        decoded_value = unquote_plus(value)
        if sep and decoded_name in CREDENTIAL_PARAMS:
            # A recognisable token keeps its display prefix; anything else is just ``***``.
            display = mask_secrets(decoded_value)
            keep = display != decoded_value and _already_masked(display)
            pairs.append(f"{name}={display if keep else MASK}")
            continue
        if mask_secrets(decoded_value) != decoded_value or mask_secrets(value) != value:
            value = mask_secrets(decoded_value)
        pairs.append(f"{mask_secrets(name)}{sep}{value}")
    return "&".join(pairs)


def _mask_gth(match: re.Match[str]) -> str:
    value = match.group(0)
    if len(value) <= len(TOKEN_PREFIX) + 8:
        return value  # already a display prefix
    return token_display_prefix(value)


def _mask_api_key(match: re.Match[str]) -> str:
    parts = _API_KEY_PARTS_RE.fullmatch(match.group(0))
    if parts is None:
        return f"{API_KEY_PREFIX}{MASK}"
    if not parts.group(2):
        return match.group(0)  # a display prefix ``gthk_<id>_`` followed by ``…`` or ``***``
    return f"{API_KEY_PREFIX}{parts.group(1)}_{MASK}"


def _mask_param(match: re.Match[str]) -> str:
    if _already_masked(match.group(2)):
        return match.group(0)
    return match.group(1) + MASK


def _mask_header(match: re.Match[str]) -> str:
    if _already_masked(match.group(3)):
        return match.group(0)
    return match.group(1) + (match.group(2) or "") + MASK


def _already_masked(value: str) -> bool:
    """A value mask_secrets produced: ``***``, ``gth_<jti8>…``, ``gth_***``, ``gthk_<id>_***``."""
    if value.endswith(MASK):
        return True
    return value.startswith(TOKEN_PREFIX) and value.endswith("…") and len(value) <= len(TOKEN_PREFIX) + 9
