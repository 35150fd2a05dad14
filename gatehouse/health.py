"""Liveness and readiness probes for load balancers and orchestrators, and the metrics scrape."""

from __future__ import annotations

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
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
    fails readiness only when ``GATEHOUSE_READY_REQUIRES_SWEEPS`` is set. ``stdio`` (when stdio
    servers are registered) is each one's state as the stdio runner reports it ("not reported"
    when no runner does): shown, never failing readiness, since one failing tool server does not
    make this instance unfit to serve the others. ``hot_path`` says whether this process admits
    requests from its caches or, because it cannot follow the change feed, from the database.
    """
    checks = check_readiness()
    failed = [name for name, result in checks.items() if result != "ok"]
    background = check_background()
    if settings.READY_REQUIRES_SWEEPS:
        failed += [name for name, result in background.items() if result != "ok"]
    body: dict[str, object] = {"status": "unavailable" if failed else "ok", "checks": checks,
                               "background": background}
    body["hot_path"] = _hot_path()
    stdio = _stdio_states()
    if stdio:
        body["stdio"] = stdio
    if failed:
        body["failed"] = failed
    response = JsonResponse(body, status=503 if failed else 200)
    # A failure is logged when it begins (gatehouse.readiness), not by Django on every probe.
    response._has_been_logged = True  # type: ignore[attr-defined]
    return response


def _hot_path() -> str:
    """``cached`` while this process's gateway caches answer (``gateway.admission.caches``); otherwise
    ``database (…)`` and why: every request is checked against the database (correct, slower)."""
    from gateway.admission.caches import mode

    return mode()


def _stdio_states() -> dict[str, str]:
    from upstreams.selectors import stdio_states

    try:
        return stdio_states()
    except Exception:  # noqa: BLE001 - the database check above already says why
        return {}


@never_cache
def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text for every process on this host (``core.metrics``), to allowed scrapers.

    With ``GATEHOUSE_METRICS_TOKEN`` set: ``Authorization: Bearer <token>`` (compared in constant
    time), from anywhere. Without it: loopback clients only, and not through a proxy (a request
    carrying ``X-Forwarded-For`` or ``Forwarded`` came from someone else, whatever the socket says).
    """
    token = settings.METRICS_TOKEN
    if token:
        given = request.headers.get("Authorization", "")
        scheme, _, value = given.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), token.encode()):
            response = JsonResponse(
                {"error": "invalid_token", "detail": "Send Authorization: Bearer $GATEHOUSE_METRICS_TOKEN."},
                status=401,
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not _loopback_client(request):
        return JsonResponse(
            {"error": "forbidden", "detail": "Metrics are served to loopback clients only; set "
                                             "GATEHOUSE_METRICS_TOKEN to scrape from elsewhere."},
            status=403,
        )
    from core.metrics import exposition

    body, content_type = exposition()
    return HttpResponse(body, content_type=content_type)


def _loopback_client(request: HttpRequest) -> bool:
    if "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META:
        return False
    try:
        return ipaddress.ip_address(request.META.get("REMOTE_ADDR") or "").is_loopback
    except ValueError:
        return False
