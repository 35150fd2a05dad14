"""Console pages of the tokens app, mounted under /console/."""

from django.urls import URLPattern, URLResolver, path

from tokens import views
from tokens.api_keys import views as api_key_views
from tokens.issuers import views as issuer_views
from tokens.oauth import pages as access_pages

urlpatterns: list[URLPattern | URLResolver] = [
    path("tokens/", views.token_list, name="console-tokens"),
    path("tokens/new/", views.token_issue, name="console-token-issue"),
    path("tokens/<int:token_id>/", views.token_detail, name="console-token-detail"),
    path("tokens/<int:token_id>/rotate/", views.token_rotate, name="console-token-rotate"),
    path("tokens/<int:token_id>/test/", views.token_test, name="console-token-test"),
    path("tokens/<int:token_id>/revoke/", views.token_revoke, name="console-token-revoke"),
    path("api-keys/", api_key_views.api_key_list, name="console-api-keys"),
    path("api-keys/new/", api_key_views.api_key_create, name="console-api-key-create"),
    path("issuers/", issuer_views.issuer_list, name="console-issuers"),
    path("issuers/new/", issuer_views.issuer_create, name="console-issuer-create"),
    path("issuers/<slug:name>/", issuer_views.issuer_detail, name="console-issuer-detail"),
    path("issuers/<slug:name>/<slug:action>/", issuer_views.issuer_action, name="console-issuer-action"),
    path("api-keys/<int:key_id>/revoke/", api_key_views.api_key_revoke, name="console-api-key-revoke"),
    path("me/", access_pages.my_access, name="console-me"),
    path("me/connections/<int:connection_id>/disconnect/", access_pages.disconnect,
         name="console-me-disconnect"),
    path("me/tokens/<int:token_id>/revoke/", access_pages.revoke_my_token, name="console-me-revoke"),
    path("access/", access_pages.access, name="console-access"),
    path("access/clients/", access_pages.register_client, name="console-access-client"),
]
