"""Per-API-key rate limit over the shared Django cache (Redis when scaled out)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from django.conf import settings
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle

from core import metrics
from tokens.models import ApiKey


class ApiKeyRateThrottle(SimpleRateThrottle):
    """``settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["apikey"]`` requests per key.

    Console sessions are not limited here: they are people, and the console has its own limits.
    """

    scope = "apikey"

    def get_rate(self) -> str | None:
        # Read at request time (not at import like DRF's default) so a settings change applies.
        # The Django plugin types REST_FRAMEWORK from settings.py's literal, a union of its values.
        rates = cast(Mapping[str, str | None], settings.REST_FRAMEWORK.get("DEFAULT_THROTTLE_RATES", {}))
        return rates.get(self.scope)

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        if not isinstance(request.auth, ApiKey):
            return None
        # The random key_id, not the primary key: databases sharing one Redis cannot collide.
        return self.cache_format % {"scope": self.scope, "ident": request.auth.key_id}

    def throttle_failure(self) -> bool:
        metrics.get().rate_limited.labels(limit="api_key").inc()
        return super().throttle_failure()
