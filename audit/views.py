"""Console pages of the audit log (read-only: staff and auditors)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from audit import events, export, selectors
from audit import usage as usage_selectors
from audit.chain import compute_hash
from audit.charts import usage_chart
from audit.forms import AuditFilterForm
from audit.models import AuditEvent
from audit.services import record
from audit.subjects import token_by_jti
from audit.webhook import webhook_status
from core.permissions import console_reader_required
from core.secrets_mask import TOKEN_PREFIX, mask_secrets

USAGE_PERIODS = (1, 7, 30, 90)


def _cursor(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() else None


def _list_url(params: dict[str, str]) -> str:
    return reverse("audit-list") + (f"?{urlencode(params)}" if params else "")


@console_reader_required
def event_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    token = request.GET.get("token", "")
    if token.startswith(TOKEN_PREFIX) and mask_secrets(token) != token:
        # A whole token was pasted into the filter: keep it out of history and referers.
        query = request.GET.copy()
        query["token"] = mask_secrets(token)
        return HttpResponseRedirect(f"{reverse('audit-list')}?{query.urlencode()}")
    valid = form.is_valid() if form.is_bound else True
    filters = form.to_filter() if valid else selectors.AuditFilter()
    page = selectors.EventPage(events=[])
    if valid:
        page = selectors.event_page(
            filters=filters, before=_cursor(request, "before"), after=_cursor(request, "after")
        )
    params = filters.as_params()
    return render(request, "console/audit/list.html", {
        "form": form,
        "filters": filters,
        "page": page,
        "params": params,
        "older_url": _list_url({**params, "before": str(page.older)}) if page.older else "",
        "newer_url": _list_url({**params, "after": str(page.newer)}) if page.newer else "",
        "export_query": urlencode(params),
        "search_indexed": bool(filters.q) and selectors.search_uses_index(filters.q),
        "webhook": webhook_status(),
    })


@console_reader_required
def event_detail(request: HttpRequest, event_id: int) -> HttpResponse:
    event = selectors.get_event(event_id=event_id)
    if event is None:
        raise Http404("No such audit event.")
    neighbours = selectors.chain_neighbours(event=event)
    fields = {name: getattr(event, name) for name in (
        "created_at", "event", "actor", "token_jti", "owner", "server", "tool", "session_id",
        "client_ip", "user_agent", "outcome", "status", "latency_ms", "detail")}
    token = token_by_jti(event.token_jti)
    return render(request, "console/audit/detail.html", {
        "event": event,
        "detail_json": json.dumps(event.detail, indent=2, sort_keys=True, ensure_ascii=False),
        "hash_ok": compute_hash(prev_hash=event.prev_hash, fields=fields) == event.hash,
        "link_ok": neighbours.previous is None or neighbours.previous.hash == event.prev_hash,
        "neighbours": neighbours,
        "token": token,
    })


def _export(request: HttpRequest, fmt: str) -> HttpResponse | StreamingHttpResponse:
    form = AuditFilterForm(request.GET or None)
    if form.is_bound and not form.is_valid():
        return HttpResponse("Invalid filter: " + form.errors.as_text(), status=400, content_type="text/plain")
    filters = form.to_filter() if form.is_bound else selectors.AuditFilter()
    record(event=events.AUDIT_EXPORTED, actor=request.user.get_username(),
           client_ip=request.META.get("REMOTE_ADDR"), user_agent=request.META.get("HTTP_USER_AGENT", ""),
           detail={"format": fmt, "filters": filters.as_params()})
    chosen = export.FORMATS[fmt]
    stream = (export.async_stream(filters=filters, fmt=fmt) if isinstance(request, ASGIRequest)
              else export.sync_stream(filters=filters, fmt=fmt))
    response = StreamingHttpResponse(stream, content_type=chosen.content_type)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    response["Content-Disposition"] = f'attachment; filename="audit-{stamp}.{chosen.extension}"'
    response["Cache-Control"] = "no-store"
    return response


@console_reader_required
def export_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    return _export(request, "csv")


@console_reader_required
def export_jsonl(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    return _export(request, "jsonl")


@console_reader_required
def token_lookup(request: HttpRequest, jti: str) -> HttpResponse:
    """From an event to its token: the token's console page if it exists, else its usage."""
    token = token_by_jti(jti)
    if token is not None:
        return HttpResponseRedirect(reverse("console-token-detail", args=[token.pk]))
    return HttpResponseRedirect(reverse("audit-token-usage", args=[jti]))


@console_reader_required
def session_lookup(request: HttpRequest, session_id: str) -> HttpResponse:
    """Every event of one gateway session."""
    return HttpResponseRedirect(_list_url({"session": session_id}))


@console_reader_required
def token_usage(request: HttpRequest, jti: str) -> HttpResponse:
    days = int(request.GET.get("days", "30")) if request.GET.get("days", "30").isdigit() else 30
    days = days if days in USAGE_PERIODS else 30
    usage = usage_selectors.token_usage(jti=jti, days=days)
    token = token_by_jti(jti)
    return render(request, "console/audit/usage.html", {
        "usage": usage,
        "chart": usage_chart(usage.buckets, hourly=usage.hourly),
        "token": token,
        "display_prefix": f"{TOKEN_PREFIX}{jti[:8]}…",
        "periods": USAGE_PERIODS,
        "events_url": _list_url({"token": jti}),
        "denials_url": _list_url({"token": jti, "outcome": AuditEvent.Outcome.DENIED}),
    })
