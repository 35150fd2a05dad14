"""Console pages of the gateway app, mounted at /console/sessions/."""

from django.urls import URLPattern, URLResolver, path

from gateway.console import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", views.session_list, name="console-sessions"),
    path("<str:session_id>/terminate/", views.session_terminate, name="console-session-terminate"),
]
