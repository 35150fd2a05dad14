"""The authorization server's public endpoints, mounted at the site root."""

from django.urls import URLPattern, URLResolver, path

from tokens.oauth import views

urlpatterns: list[URLPattern | URLResolver] = [
    path(".well-known/oauth-authorization-server", views.authorization_server_metadata,
         name="oauth-authorization-server"),
    path("oauth/authorize", views.authorize, name="oauth-authorize"),
    path("oauth/token", views.token, name="oauth-token"),
    path("oauth/register", views.register, name="oauth-register"),
    path("oauth/revoke", views.revoke, name="oauth-revoke"),
]
