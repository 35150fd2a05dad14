"""Django admin shows servers, keys and tokens read-only and never a secret."""

from __future__ import annotations

import pytest

from tests.factories import StaffUserFactory
from tokens import crypto
from tokens.models import SigningKey
from tokens.signing_keys import get_active_signing_key
from upstreams.services import create_server


@pytest.fixture
def admin_client(client, db):
    client.force_login(StaffUserFactory(username="super", is_superuser=True))
    return client


def test_admin_pages_never_show_header_values_or_private_keys(admin_client, make_token):
    server = create_server(name="vault", url="https://bot:pw-in-url@up.example/mcp",
                           headers={"Authorization": "Bearer header-secret"}, actor="tests")
    issued = make_token()
    key = get_active_signing_key()
    private_pem = crypto.decrypt(key.private_key_encrypted)
    private_body = private_pem.splitlines()[1]
    pages = [
        "/admin/upstreams/upstreamserver/", f"/admin/upstreams/upstreamserver/{server.pk}/change/",
        "/admin/tokens/signingkey/", f"/admin/tokens/signingkey/{key.pk}/change/",
        "/admin/tokens/token/", f"/admin/tokens/token/{issued.token.pk}/change/",
    ]
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for secret in ("header-secret", "pw-in-url", private_body, key.private_key_encrypted,
                       server.headers_encrypted, issued.secret[4:]):
            assert secret not in html, (url, secret[:12])
    change = admin_client.get(f"/admin/upstreams/upstreamserver/{server.pk}/change/").content.decode()
    assert "Authorization" in change  # the name is shown


def test_admin_cannot_add_or_delete_what_services_own(admin_client, make_token):
    issued = make_token()
    assert admin_client.get("/admin/tokens/token/add/").status_code == 403
    assert admin_client.get("/admin/upstreams/upstreamserver/add/").status_code == 403
    assert admin_client.get("/admin/tokens/signingkey/add/").status_code == 403
    delete = admin_client.post(f"/admin/tokens/token/{issued.token.pk}/delete/", {"post": "yes"})
    assert delete.status_code == 403
    assert SigningKey.objects.exists()
