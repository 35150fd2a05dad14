from django.urls import URLPattern, URLResolver, path, re_path

from gateway import views

urlpatterns: list[URLPattern | URLResolver] = [
    path(".well-known/oauth-protected-resource", views.protected_resource_metadata,
         name="oauth-protected-resource"),
    re_path(r"^\.well-known/oauth-protected-resource/(?P<resource_path>(?:mcp|sse)(?:/[-a-zA-Z0-9_]+)?/?)$",
            views.protected_resource_metadata),
]
