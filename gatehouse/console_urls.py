"""The console: one prefix, each app contributes its pages."""

from django.urls import include, path

from gatehouse import dashboard

urlpatterns = [
    path("", dashboard.dashboard, name="console-dashboard"),
    path("", include("upstreams.urls")),
    path("", include("tokens.urls")),
    path("audit/", include("audit.urls")),
    path("sessions/", include("gateway.console.urls")),
]
