"""At-rest encryption of stored secrets (upstream credentials, stdio env values, signing keys).

Fernet with a key derived from ``GATEHOUSE_ENCRYPTION_KEY`` (default: the secret key). Changing
that key orphans every stored secret; a failed decrypt raises ``RuntimeError`` saying so.
"""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def _fernet() -> Fernet:
    if not settings.ENCRYPTION_KEY:
        # Only a script that skips every entry point's data-dir check can get here: never
        # encrypt with a key derived from nothing.
        raise ImproperlyConfigured(
            "No encryption key: run `gatehouse prepare_data_dir` or set GATEHOUSE_SECRET_KEY "
            "(or GATEHOUSE_ENCRYPTION_KEY)."
        )
    return _fernet_for(settings.ENCRYPTION_KEY)


@lru_cache(maxsize=4)
def _fernet_for(secret: str) -> Fernet:
    digest = hashlib.sha256(b"gatehouse-at-rest-v1:" + secret.encode()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str) -> str:
    try:
        return _fernet().decrypt(ciphertext.encode()).decode()
    except InvalidToken as exc:  # wrong GATEHOUSE_ENCRYPTION_KEY / SECRET_KEY
        raise RuntimeError(
            "Cannot decrypt a stored secret: GATEHOUSE_ENCRYPTION_KEY (or the secret key) changed."
        ) from exc


def encrypt_json(value: dict[str, Any]) -> str:
    return encrypt(json.dumps(value)) if value else ""


def decrypt_json(ciphertext: str) -> dict[str, Any]:
    return json.loads(decrypt(ciphertext)) if ciphertext else {}
