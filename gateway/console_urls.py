"""Console pages of the gateway app, mounted at /console/sessions/."""

from django.urls import URLPattern, URLResolver, path

from gateway import console_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("", console_views.session_list, name="console-sessions"),
    path("<str:session_id>/terminate/", console_views.session_terminate, name="console-session-terminate"),
]
