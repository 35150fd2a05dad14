from django.urls import URLPattern, URLResolver, path

from tokens import wellknown

urlpatterns: list[URLPattern | URLResolver] = [
    path(".well-known/jwks.json", wellknown.jwks, name="jwks"),
]
