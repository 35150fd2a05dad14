"""A transport is one registry entry plus its flow module: routes, URLs, snippets and validation follow."""

from __future__ import annotations

import contextlib
import json
from io import StringIO

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import HttpCommunicator
from django.core.management import call_command

from gateway.asgi import build_urlpatterns, no_route
from tests.gateway import throwaway_flow
from tokens.snippets import connection_snippets, mcp_url
from upstreams import transports
from upstreams.models import UpstreamServer

NAME = "throwaway"


@contextlib.asynccontextmanager
async def _no_sdk_client(url, headers, timeout):
    raise NotImplementedError("the throwaway transport has no SDK client")
    yield


@pytest.fixture
def throwaway():
    """The one place the throwaway transport is declared."""
    transport = transports.register(
        transports.Transport(
            name=NAME,
            label="Throwaway (tests)",
            path_prefix=throwaway_flow.PREFIX,
            session="header",
            bridge_flag="--streamableHttp",
            claude_transport="http",
            query_key_works=True,
            flow="tests.gateway.throwaway_flow",
            open_sdk_client=_no_sdk_client,
        )
    )
    yield transport
    transports.unregister(NAME)


def _get(patterns, path: str) -> dict:
    communicator = HttpCommunicator(URLRouter(patterns), "GET", path)
    return async_to_sync(communicator.get_response)(timeout=10)


def test_the_new_path_is_routed_to_its_flow(throwaway):
    patterns = build_urlpatterns()

    response = _get(patterns, "/throwaway/tw/")

    assert response["status"] == 200
    assert json.loads(response["body"]) == {"flow": "throwaway", "server": "tw"}


def test_the_catch_all_404_still_comes_last(throwaway):
    patterns = build_urlpatterns()

    assert patterns[-1].callback is no_route
    assert throwaway_flow.routes[0] in patterns[:-1]
    # The existing flows keep their place ahead of the new one (registry order).
    assert [p.pattern.regex.pattern.split("/")[0] for p in patterns[:2]] == ["^mcp", "^mcp"]


@pytest.mark.django_db(transaction=True)
def test_unknown_paths_under_the_new_prefix_get_the_json_404(throwaway):
    response = _get(build_urlpatterns(), "/throwaway/tw/extra/path")

    assert response["status"] == 404
    assert json.loads(response["body"])["error"] == "not_found"


def test_urls_and_snippets_use_the_new_prefix(throwaway):
    url = "https://gw.example/throwaway/tw/"
    assert mcp_url(server="tw", public_url="https://gw.example", transport=NAME) == url
    assert UpstreamServer(name="tw", transport=NAME).client_path == "/throwaway/tw/"
    snippets = connection_snippets(
        token="gth_x", server="tw", public_url="https://gw.example", transport=NAME
    )
    assert any(url in snippet.text for snippet in snippets)


@pytest.mark.django_db
def test_add_server_accepts_the_new_transport(throwaway):
    out = StringIO()

    call_command("add_server", "tw", "http://127.0.0.1:9/mcp", "--transport", NAME, stdout=out)

    assert UpstreamServer.objects.get(name="tw").transport == NAME
    assert "clients use /throwaway/tw/" in out.getvalue()


def test_without_the_entry_the_prefix_is_not_the_gateways():
    assert all("throwaway" not in p.pattern.regex.pattern for p in build_urlpatterns())
