"""Console pages for upstream servers, mounted under /console/."""

from django.urls import URLPattern, URLResolver, path

from upstreams import views
from upstreams.accounts import views as account_views

urlpatterns: list[URLPattern | URLResolver] = [
    path("servers/", views.server_list, name="console-servers"),
    path("servers/add/", views.server_add, name="console-server-add"),
    path("servers/<slug:name>/", views.server_detail, name="console-server-detail"),
    path("servers/<slug:name>/edit/", views.server_edit, name="console-server-edit"),
    path("servers/<slug:name>/disable/", views.server_disable, name="console-server-disable"),
    path("servers/<slug:name>/enable/", views.server_enable, name="console-server-enable"),
    path(
        "servers/<slug:name>/tool-changes/<int:change_id>/<str:decision>/",
        views.tool_change_decide,
        name="console-tool-change-decide",
    ),
    path("servers/<slug:name>/accounts/<str:username>/disconnect/", account_views.disconnect_someone,
         name="console-server-account-disconnect"),
    # My access (``/console/me/``): a person's own connected accounts.
    path("me/connect/<slug:name>/", account_views.connect, name="console-me-account-connect"),
    path("me/connect/<slug:name>/callback", account_views.callback, name="console-me-account-callback"),
    path("me/connect/<slug:name>/disconnect/", account_views.disconnect,
         name="console-me-account-disconnect"),
]
