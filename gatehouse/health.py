"""Liveness and readiness probes for load balancers and orchestrators."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from gatehouse.readiness import check_background, check_readiness


@never_cache
def health(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. Touches no database, cache or broker."""
    return JsonResponse({"status": "ok"})


@never_cache
def ready(request: HttpRequest) -> JsonResponse:
    """Readiness: database, cache, channel layer and broker all reachable, or 503 naming what failed.

    ``background`` says whether the periodic sweeps run (a Celery worker and beat); a stopped one
    fails readiness only when ``GATEHOUSE_READY_REQUIRES_SWEEPS`` is set.
    """
    checks = check_readiness()
    failed = [name for name, result in checks.items() if result != "ok"]
    background = check_background()
    if settings.READY_REQUIRES_SWEEPS:
        failed += [name for name, result in background.items() if result != "ok"]
    body: dict[str, object] = {"status": "unavailable" if failed else "ok", "checks": checks,
                               "background": background}
    if failed:
        body["failed"] = failed
    response = JsonResponse(body, status=503 if failed else 200)
    # A failure is logged when it begins (gatehouse.readiness), not by Django on every probe.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response
