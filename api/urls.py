"""REST API v1, mounted at /api/v1/ by gatehouse.urls."""

from django.urls import URLPattern, URLResolver, include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from api import access_grants, views
from api.token_exchange import TokenExchangeView

router = SimpleRouter(trailing_slash=True, use_regex_path=False)
router.register("tokens", views.TokenViewSet, basename="api-token")
router.register("servers", views.ServerViewSet, basename="api-server")
router.register("sessions", views.SessionViewSet, basename="api-session")
router.register("audit", views.AuditEventViewSet, basename="api-audit")
router.register("grants", access_grants.GrantViewSet, basename="api-grant")

urlpatterns: list[URLPattern | URLResolver] = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    path("token-exchange/", TokenExchangeView.as_view(), name="api-token-exchange"),
    path("", include(router.urls)),
    # Anything else, even a path with a newline in it, gets the JSON 404.
    re_path(r"^[\s\S]*$", views.NotFoundView.as_view(), name="api-not-found"),
]
