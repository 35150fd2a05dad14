"""Console pages for upstream servers: list, detail (with live tools), add, edit, disable."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.permissions import can_manage, console_admin_required, console_reader_required
from upstreams import pinning_services, selectors, services, transports
from upstreams.accounts import selectors as account_selectors
from upstreams.exceptions import InvalidServerConfig
from upstreams.forms import ServerCreateForm, ServerEditForm
from upstreams.models import ToolChange, UpstreamServer
from upstreams.pinning import definition_hash
from upstreams.tools import UpstreamTool, list_upstream_tools
from upstreams.url import redacted_url


def _server_or_404(name: str) -> UpstreamServer:
    server = selectors.get_server(name=name)
    if server is None:
        raise Http404("No such server.")
    return server


def _actor(request: HttpRequest) -> str:
    return request.user.get_username()


def _client_ip(request: HttpRequest) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


@console_reader_required
def server_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "console/servers/list.html",
        {"servers": selectors.server_list(), "can_manage": can_manage(request.user)},
    )


@console_reader_required
def server_detail(request: HttpRequest, name: str) -> HttpResponse:
    server = _server_or_404(name)
    listing = list_upstream_tools(servers=[server])[server.name]
    return render(
        request,
        "console/servers/detail.html",
        {
            "summary": selectors.server_summary(server=server),
            "listing": listing,
            "mcp_path": server.client_path,
            "public_url": settings.PUBLIC_URL,
            "can_manage": can_manage(request.user),
            "tool_rows": _tool_rows(server, listing.tools),
            "pending_changes": list(selectors.pending_tool_changes(server=server)),
            "connections": account_selectors.connections(server=server) if server.user_credential else [],
        },
    )


def _tool_rows(server: UpstreamServer, tools: list[UpstreamTool]) -> list[tuple[UpstreamTool, str]]:
    """Each live tool and, on a pinned server, whether its current definition is the approved one."""
    if not server.pin_tools:
        return [(tool, "") for tool in tools]
    approved = {t.name: t.hash for t in selectors.approved_tools(server=server)}
    rows = []
    for tool in tools:
        if tool.name not in approved:
            status = "not approved"
        elif approved[tool.name] == definition_hash(tool.definition):
            status = "approved"
        else:
            status = "changed since approved"
        rows.append((tool, status))
    return rows


def _transport_fields(request: HttpRequest, *, default: str) -> dict[str, object]:
    """Which transport's fields the add/edit form shows (the one posted, chosen with ?transport=, or
    ``default``), the links that choose another without JavaScript, and the transports run by
    Gatehouse (for the script that switches fieldsets in place)."""
    chosen = request.POST.get("transport") or request.GET.get("transport") or default
    if chosen not in transports.names():
        chosen = default
    return {
        "transport_chosen": chosen,
        "stdio_shown": transports.get(chosen).hosted,
        "transport_links": [(name, label, name == chosen) for name, label in transports.choices()],
        "hosted_transports": [name for name in transports.names() if transports.get(name).hosted],
    }


@console_admin_required
def server_add(request: HttpRequest) -> HttpResponse:
    shown = _transport_fields(request, default=transports.DEFAULT.name)
    form = ServerCreateForm(request.POST or None, initial={"transport": shown["transport_chosen"]})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            server = services.create_server(
                name=data["name"],
                url=data["url"],
                transport=data["transport"],
                description=data["description"],
                headers=data["headers"],
                forward_identity=data["forward_identity"],
                identity_header=data["identity_header"],
                actor=_actor(request),
                client_ip=_client_ip(request),
                pin_tools=data["pin_tools"],
                stdio=services.StdioSettings(
                    command=data["command"], env=data["env"], cwd=data["cwd"], isolation=data["isolation"],
                    max_processes=data["max_processes"],
                ),
                user_credential=form.user_credential_settings(),
            )
        except InvalidServerConfig as exc:
            form.add_error(None, exc.detail)
        else:
            if server.pin_tools:
                pinning_services.offer_current_tools(server=server)
            messages.success(
                request,
                f"Server {server.name} added. Clients reach it at "
                f"{server.client_path}.",
            )
            return redirect("console-server-detail", name=server.name)
    return render(request, "console/servers/form.html", {"form": form, "server": None, **shown})


@console_admin_required
def server_edit(request: HttpRequest, name: str) -> HttpResponse:
    server = _server_or_404(name)
    summary = selectors.server_summary(server=server)
    # The form never shows credentials in the URL; sent back unchanged, the stored URL is kept.
    shown_url = redacted_url(server.url)
    initial = {
        "url": shown_url, "transport": server.transport, "description": server.description,
        "forward_identity": server.forward_identity, "identity_header": server.identity_header,
        "pin_tools": server.pin_tools, "command": server.command, "cwd": server.cwd,
        "isolation": server.isolation, "max_processes": server.max_processes,
        **_user_credential_initial(server),
    }
    shown = _transport_fields(request, default=server.transport)
    initial["transport"] = shown["transport_chosen"]
    form = ServerEditForm(
        request.POST or None, initial=initial, header_names=summary.header_names, env_names=summary.env_names
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.update_server(
                server=server,
                url=None if data["url"] == shown_url else data["url"],
                transport=data["transport"],
                description=data["description"],
                set_headers=data["headers"],
                remove_headers=data.get("remove_headers", []),
                forward_identity=data["forward_identity"],
                identity_header=data["identity_header"],
                actor=_actor(request),
                client_ip=_client_ip(request),
                stdio=services.StdioChanges(
                    command=data["command"], set_env=data["env"], remove_env=data.get("remove_env", []),
                    cwd=data["cwd"], isolation=data["isolation"], max_processes=data["max_processes"],
                ),
                user_credential=form.user_credential_settings(),
            )
            pinning_services.set_pin_tools(
                server=server, enabled=data["pin_tools"], actor=_actor(request), client_ip=_client_ip(request)
            )
        except InvalidServerConfig as exc:
            form.add_error(None, exc.detail)
        except RuntimeError:  # stored headers cannot be decrypted with today's key
            form.add_error(None, "The stored headers cannot be decrypted; the encryption key changed.")
        else:
            messages.success(request, f"Server {server.name} saved.")
            return redirect("console-server-detail", name=server.name)
    return render(request, "console/servers/form.html", {
        "form": form, "server": server, "summary": summary, **shown,
    })


def _user_credential_initial(server: UpstreamServer) -> dict[str, str]:
    """The edit form's user credential as typed on the command line; the client secret is never
    shown (left empty, it is kept)."""
    kind = server.user_credential_kind
    if kind is None:
        return {}
    if kind.default_header is None:
        return {"user_credential": f"{kind.name}:{server.user_credential_header}"}
    return {"user_credential": kind.name, "oauth_header": server.user_credential_header,
            **{f"oauth_{k}": v for k, v in server.user_oauth.items()}}


def _set_enabled(request: HttpRequest, name: str, *, enabled: bool) -> HttpResponse:
    server = services.set_server_enabled(
        server=_server_or_404(name), enabled=enabled, actor=_actor(request), client_ip=_client_ip(request)
    )
    if enabled:
        messages.success(request, f"Server {server.name} enabled.")
    else:
        messages.success(request, f"Server {server.name} disabled: the gateway refuses its traffic.")
    if request.POST.get("back") == "detail":
        return redirect("console-server-detail", name=server.name)
    return redirect(reverse("console-servers"))


@require_POST
@console_admin_required
def server_disable(request: HttpRequest, name: str) -> HttpResponse:
    return _set_enabled(request, name, enabled=False)


@require_POST
@console_admin_required
def server_enable(request: HttpRequest, name: str) -> HttpResponse:
    return _set_enabled(request, name, enabled=True)


@require_POST
@console_admin_required
def tool_change_decide(request: HttpRequest, name: str, change_id: int, decision: str) -> HttpResponse:
    """Approve (the seen definition becomes the approved one) or reject a pending tool change."""
    server = _server_or_404(name)
    change = ToolChange.objects.filter(pk=change_id, server=server).first()
    if change is None or decision not in ("approve", "reject"):
        raise Http404("No such tool change.")
    change = pinning_services.decide_change(
        change=change, approve=decision == "approve", actor=_actor(request), client_ip=_client_ip(request)
    )
    if change.status == ToolChange.Status.APPROVED:
        messages.success(request, f"Tool {change.name} approved: clients see this definition.")
    else:
        messages.success(request, f"Change to {change.name} rejected: it stays hidden.")
    return redirect("console-server-detail", name=server.name)
