"""`/metrics`: what operators scrape, counted across every Gatehouse process on the host.

Each test uses a server name of its own, so the counters it reads are its own even though every
daphne of the test run (and the pytest process, which revokes tokens) shares one metrics directory,
as the processes of one installation do.
"""

from __future__ import annotations

import socket
import uuid

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core import metrics
from tests.gateway.drivers import MCP_HEADERS, OpenStream, assert_json_error, call, eventually, initialize
from tests.support.processes import free_port, running, serve_args, subprocess_env
from tokens.services import revoke_token

pytestmark = pytest.mark.integration


def scrape(base_url: str, **kwargs) -> dict[tuple[str, frozenset], float]:
    response = httpx.get(f"{base_url}/metrics", timeout=10, **kwargs)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[tuple[str, frozenset], float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def server_name() -> str:
    return f"m{uuid.uuid4().hex[:8]}"


def test_forwarded_calls_refusals_sessions_and_both_times_are_counted(gw, register_upstream):
    name = server_name()
    register_upstream(name=name, url=gw.upstream)
    token = gw.token({name: ["echo"]}).secret
    before = scrape(gw.url)

    session_id = initialize(gw.mcp(name), token)
    assert call(gw.mcp(name), token, session_id, "echo", {"text": "hi"}).status_code == 200
    denied = call(gw.mcp(name), token, session_id, "secret_tool")
    assert "not" in denied.text  # refused at the gateway, never forwarded
    assert_json_error(httpx.post(gw.mcp(name), json={}, headers={**MCP_HEADERS, "X-API-Key": "gth_bad"}),
                      401, "invalid_token")

    after = scrape(gw.url)
    assert value(after, "gatehouse_gateway_requests_total", server=name, tool="echo", outcome="success",
                 status="200") == 1
    assert value(after, "gatehouse_gateway_requests_total", server=name, tool="secret_tool",
                 outcome="denied", status=str(denied.status_code)) == 1
    for reason in ("tool_not_in_scope", "invalid_token"):
        grew = value(after, "gatehouse_gateway_refusals_total", reason=reason) - value(
            before, "gatehouse_gateway_refusals_total", reason=reason)
        assert grew >= 1, reason
    # initialize, notifications/initialized, tools/call: three upstream hops, timed apart from
    # what the gateway added to each.
    assert value(after, "gatehouse_upstream_seconds_count", server=name) == 3
    assert value(after, "gatehouse_upstream_seconds_sum", server=name) > 0
    assert value(after, "gatehouse_gateway_added_seconds_count") - value(
        before, "gatehouse_gateway_added_seconds_count") >= 3
    assert value(after, "gatehouse_live_sessions", server=name) == 1


def test_a_tool_name_per_request_cannot_grow_the_series_without_bound():
    """Tool names come from clients; past a cap per process they all count as ``other``."""
    labels = {metrics.tool_label("flood", f"tool-{i}") for i in range(metrics.MAX_TOOL_LABELS + 100)}
    assert len(labels) <= metrics.MAX_TOOL_LABELS + 1
    assert metrics.OTHER in labels
    assert metrics.tool_label("flood", "tool-1") == "tool-1"  # names seen before keep their series


def test_revocation_closes_the_stream_and_is_counted_with_its_delay(gw, register_upstream):
    name = server_name()
    register_upstream(name=name, url=gw.upstream)
    issued = gw.token({name: None})
    session_id = initialize(gw.mcp(name), issued.secret)
    before = scrape(gw.url)
    headers = {**MCP_HEADERS, "X-API-Key": issued.secret, "Mcp-Session-Id": session_id}
    stream = OpenStream(gw.mcp(name), headers)
    open_before = value(before, "gatehouse_gateway_open_streams")
    # The gauge counts a stream once its answer begins, which a loaded machine may delay.
    eventually(lambda: value(scrape(gw.url), "gatehouse_gateway_open_streams") >= open_before + 1)

    revoke_token(token=issued.token, actor="tests")
    assert stream.wait_closed(timeout=5) is not None

    after = scrape(gw.url)
    assert value(after, "gatehouse_token_revocations_total") >= value(
        before, "gatehouse_token_revocations_total") + 1
    closes = value(after, "gatehouse_revoke_to_stream_close_seconds_count") - value(
        before, "gatehouse_revoke_to_stream_close_seconds_count")
    assert closes >= 1
    # The 1 s promise, as the histogram records it: the stream's close fell in a bucket <= 1.5 s.
    within = value(after, "gatehouse_revoke_to_stream_close_seconds_bucket", le="1.5") - value(
        before, "gatehouse_revoke_to_stream_close_seconds_bucket", le="1.5")
    assert within == closes
    assert value(after, "gatehouse_gateway_open_streams") == open_before


def test_counters_add_up_across_processes_and_rate_limits_are_counted(gw, strict_gateway, register_upstream):
    """Two daphnes on one host (one of them with a 5/h token rate): one scrape of either sees both."""
    name = server_name()
    register_upstream(name=name, url=gw.upstream)
    token = gw.token({name: None}).secret
    before = scrape(gw.url)
    initialize(gw.mcp(name), token)
    strict_mcp = f"{strict_gateway.url}/mcp/{name}/"
    statuses = [httpx.post(strict_mcp, json={"jsonrpc": "2.0", "id": 1, "method": "ping"},
                           headers={**MCP_HEADERS, "X-API-Key": token}, timeout=10).status_code
                for _ in range(7)]
    assert 429 in statuses

    for url in (gw.url, strict_gateway.url):
        after = scrape(url)
        initialized = value(after, "gatehouse_upstream_seconds_count", server=name)
        assert initialized >= 2  # initialize + initialized through gw, and the strict one's pings
        assert value(after, "gatehouse_rate_limited_total", limit="token") - value(
            before, "gatehouse_rate_limited_total", limit="token") == statuses.count(429)


def _serve_on_all_addresses(tmp_path_factory, django_db_blocker, env: dict[str, str]):
    port = free_port()
    log_path = tmp_path_factory.mktemp("daphne-metrics") / "daphne.log"
    hosts = ",".join(filter(None, ["127.0.0.1", "localhost", _non_loopback_ip()]))
    with django_db_blocker.unblock():
        full_env = subprocess_env({"GATEHOUSE_ALLOWED_HOSTS": hosts, **env})
    with running(serve_args(port, bind="0.0.0.0"), env=full_env, ready_url=f"http://127.0.0.1:{port}/health",
                 log_path=log_path):
        yield port, log_path


@pytest.fixture(scope="module")
def guarded_gateway(django_db_setup, django_db_blocker, tmp_path_factory):
    """A daphne with GATEHOUSE_METRICS_TOKEN set, listening on every address."""
    yield from _serve_on_all_addresses(tmp_path_factory, django_db_blocker,
                                       {"GATEHOUSE_METRICS_TOKEN": "scrape-secret-123"})


@pytest.fixture(scope="module")
def open_gateway(django_db_setup, django_db_blocker, tmp_path_factory):
    """A daphne without a metrics token, listening on every address."""
    yield from _serve_on_all_addresses(tmp_path_factory, django_db_blocker, {})


def test_with_a_metrics_token_set_only_its_bearer_may_scrape(guarded_gateway):
    port, log_path = guarded_gateway
    for base in filter(None, [f"http://127.0.0.1:{port}", _at_non_loopback_address(port)]):
        assert_json_error(httpx.get(f"{base}/metrics"), 401, "invalid_token")
        assert_json_error(httpx.get(f"{base}/metrics", headers={"Authorization": "Bearer wrong"}),
                          401, "invalid_token")
        assert scrape(base, headers={"Authorization": "Bearer scrape-secret-123"})
    assert "scrape-secret-123" not in log_path.read_text()


def test_without_a_token_only_loopback_clients_not_behind_a_proxy_may_scrape(open_gateway):
    port, _ = open_gateway
    assert scrape(f"http://127.0.0.1:{port}")
    proxied = httpx.get(f"http://127.0.0.1:{port}/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert_json_error(proxied, 403, "forbidden")
    remote = _at_non_loopback_address(port)
    if remote is None:
        pytest.skip("this host has no non-loopback address to connect from")
    assert_json_error(httpx.get(f"{remote}/metrics"), 403, "forbidden")


def _at_non_loopback_address(port: int) -> str | None:
    address = _non_loopback_ip()
    return f"http://{address}:{port}" if address else None


def _non_loopback_ip() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address
