"""Admission: everything the gateway must know before it forwards a request. The rules
(``rules.admit``, ``admit_fast``), the client credential kinds, the per-process caches the rules
read first, the rate limits, session bindings, and the database threads (``run_db``).

Public names are importable from here; each is imported from its module on first use, so
importing the package costs no more than importing the module that was asked for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from gateway.admission.caches import mode
    from gateway.admission.credentials import (
        MAX_CREDENTIAL_LENGTH,
        Credential,
        CredentialKind,
        RequestParts,
        credential_header_names,
        extract_credential,
        query_param,
        strip_query_credentials,
    )
    from gateway.admission.db_pool import close_pool_connections, run_db
    from gateway.admission.rules import Admission, Recheck, admit_fast, flush_noted, recheck

_HOMES = {
    "Admission": "gateway.admission.rules",
    "Credential": "gateway.admission.credentials",
    "CredentialKind": "gateway.admission.credentials",
    "MAX_CREDENTIAL_LENGTH": "gateway.admission.credentials",
    "Recheck": "gateway.admission.rules",
    "RequestParts": "gateway.admission.credentials",
    "admit_fast": "gateway.admission.rules",
    "close_pool_connections": "gateway.admission.db_pool",
    "credential_header_names": "gateway.admission.credentials",
    "extract_credential": "gateway.admission.credentials",
    "flush_noted": "gateway.admission.rules",
    "mode": "gateway.admission.caches",
    "query_param": "gateway.admission.credentials",
    "recheck": "gateway.admission.rules",
    "run_db": "gateway.admission.db_pool",
    "strip_query_credentials": "gateway.admission.credentials",
}
__all__ = [
    "MAX_CREDENTIAL_LENGTH",
    "Admission",
    "Credential",
    "CredentialKind",
    "Recheck",
    "RequestParts",
    "admit_fast",
    "close_pool_connections",
    "credential_header_names",
    "extract_credential",
    "flush_noted",
    "mode",
    "query_param",
    "recheck",
    "run_db",
    "strip_query_credentials",
]
__getattr__ = lazy_exports(__name__, _HOMES)
