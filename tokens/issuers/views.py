"""Console pages for trusted issuers: list, add, detail (enable, disable, remove), cut subjects off."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from core.exceptions import GatehouseError
from core.permissions import can_manage, console_admin_required, console_reader_required
from tokens.exceptions import IssuerNotFound
from tokens.issuers import selectors, services
from tokens.issuers.exchange import GRANT_TYPE
from tokens.issuers.forms import IssuerForm, SubjectForm


def _actor(request: HttpRequest) -> str:
    return request.user.get_username()


@console_reader_required
def issuer_list(request: HttpRequest) -> HttpResponse:
    return render(request, "console/issuers/list.html",
                  {"issuers": selectors.issuer_list(), "can_manage": can_manage(request.user)})


@console_admin_required
@require_http_methods(["GET", "POST"])
def issuer_create(request: HttpRequest) -> HttpResponse:
    form = IssuerForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            issuer = services.create_issuer(config=form.issuer_settings(), actor=_actor(request))
        except GatehouseError as exc:
            form.add_error(None, exc.detail)
        else:
            messages.success(request, f"Trusting {issuer.name} ({issuer.issuer}).")
            return redirect("console-issuer-detail", name=issuer.name)
    return render(request, "console/issuers/new.html", {"form": form})


@console_reader_required
def issuer_detail(request: HttpRequest, name: str) -> HttpResponse:
    try:
        issuer = selectors.issuer_by_name(name)
    except IssuerNotFound as exc:
        raise Http404(exc.detail) from exc
    return render(request, "console/issuers/detail.html", {
        "issuer": issuer, "denied": selectors.denied_subjects(issuer), "subject_form": SubjectForm(),
        "can_manage": can_manage(request.user), "grant_type": GRANT_TYPE,
    })


@console_admin_required
@require_POST
def issuer_action(request: HttpRequest, name: str, action: str) -> HttpResponse:
    """``enable``, ``disable``, ``delete``, ``revoke-subject``, ``restore-subject``."""
    try:
        issuer = selectors.issuer_by_name(name)
        if action in ("enable", "disable"):
            services.set_issuer_enabled(issuer=issuer, enabled=action == "enable", actor=_actor(request))
            messages.success(request, f"{issuer.name} {action}d.")
        elif action == "delete":
            services.delete_issuer(issuer=issuer, actor=_actor(request))
            messages.success(request, f"{name} is no longer trusted.")
            return redirect("console-issuers")
        elif action in ("revoke-subject", "restore-subject"):
            form = SubjectForm(request.POST)
            if not form.is_valid():
                messages.error(request, "Name the subject (its sub claim).")
                return redirect("console-issuer-detail", name=name)
            subject = form.cleaned_data["subject"]
            if action == "revoke-subject":
                count = services.revoke_subject(issuer=issuer, subject=subject, actor=_actor(request))
                messages.success(request, f"Cut off {subject}; {count} token(s) revoked.")
            else:
                services.restore_subject(issuer=issuer, subject=subject, actor=_actor(request))
                messages.success(request, f"Restored {subject}.")
        else:
            raise Http404("No such action.")
    except GatehouseError as exc:
        messages.error(request, exc.detail)
    return redirect("console-issuer-detail", name=name)
