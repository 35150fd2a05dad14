"""``/.well-known/jwks.json``: the public keys that verify Gatehouse tokens."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from tokens import selectors


@require_safe
# Short: verifiers outside Gatehouse should see a freshly rotated key within a minute.
@cache_control(public=True, max_age=60)
def jwks(request: HttpRequest) -> JsonResponse:
    """Active and retired keys; a retired key stays listed until it is pruned."""
    return JsonResponse(selectors.jwks())
