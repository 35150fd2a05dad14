from django.conf import settings
from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from gatehouse import health
from gatehouse.oidc_login import SignInView

urlpatterns = [
    path("", RedirectView.as_view(url="/console/", permanent=False)),
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("metrics", health.metrics, name="metrics"),
    path("accounts/login/", SignInView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
    path("console/", include("gatehouse.console_urls")),
    path("api/v1/", include("api.urls")),
    path("", include("tokens.wellknown_urls")),
    path("", include("tokens.oauth.urls")),
    path("", include("gateway.urls")),
]

if settings.OIDC_ISSUER:  # console sign-in with OpenID Connect: /oidc/authenticate/, /oidc/callback/
    urlpatterns.insert(0, path("oidc/", include("mozilla_django_oidc.urls")))
