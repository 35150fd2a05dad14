"""Promises of the gateway's channel-layer calls while the layer (Redis) is down (unit level, every pass).

Fault: the channel layer cannot reach Redis (refused, reset, hanging).
What the client sees: its request goes on (a legacy SSE stream opens without the group that
carries refusals from other requests; a refused call is still refused and accepted with 202).
How fast it recovers: the layer is tried again ``RETRY_SECONDS`` after a failure (once, not by
every request), and at once when ``/ready`` finds it answering.
No revoked token accepted: the layer carries no verdicts; revocation goes through the database.
The outage is logged once (also for channels-redis's own per-second tracebacks).
"""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis

from core import layer
from core.outage import Outage


@pytest.fixture(autouse=True)
def fresh_outage(monkeypatch):
    outage = Outage(what="Channel layer", meanwhile="testing", retry_seconds=60)
    monkeypatch.setattr(layer, "outage", outage)
    return outage


@pytest.fixture
def outage_log(caplog):
    with caplog.at_level(logging.INFO, logger="gatehouse"):
        yield lambda: [r.getMessage() for r in caplog.records if r.name == "gatehouse.outage"]


class DeadLayer:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.calls = 0

    async def group_send(self, group: str, message: dict) -> None:
        self.calls += 1
        raise self.exc

    async def new_channel(self) -> str:
        self.calls += 1
        raise self.exc


def test_a_dead_layer_fails_no_request_and_is_tried_once_per_interval(outage_log):
    dead = DeadLayer(redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6379."))

    async def requests() -> list:
        results = [await layer.best_effort(dead.group_send, "g", {"type": "x"}) for _ in range(10)]
        return [*results, await layer.join_group(dead, "g")]

    assert asyncio.run(requests()) == [None] * 11
    assert dead.calls == 1
    assert outage_log() == ["Channel layer unreachable: testing"]


def test_a_hanging_layer_costs_a_request_at_most_the_call_timeout(monkeypatch, fresh_outage):
    monkeypatch.setattr(layer, "CALL_TIMEOUT_SECONDS", 0.05)

    async def hang(*args: object) -> None:
        await asyncio.sleep(60)

    assert asyncio.run(layer.best_effort(hang)) is None
    assert fresh_outage.down


def test_leaving_a_group_is_tried_even_during_an_outage(fresh_outage):
    fresh_outage.failed(ConnectionError("down"))
    left = []

    async def group_discard(group: str, channel: str) -> None:
        left.append(group)

    asyncio.run(layer.best_effort(group_discard, "g", "c", cleanup=True))
    assert left == ["g"]
    assert not fresh_outage.down


def test_a_bug_is_not_mistaken_for_an_outage(fresh_outage, caplog):
    dead = DeadLayer(RuntimeError("You can only call group_add() on channels that exist in-process."))
    with caplog.at_level(logging.ERROR, logger="gatehouse.gateway"):
        assert asyncio.run(layer.best_effort(dead.group_send, "g", {})) is None
    assert not fresh_outage.down
    assert "channel layer call failed" in caplog.text


def test_channels_redis_tracebacks_during_an_outage_become_one_line(fresh_outage, outage_log):
    chatty = logging.getLogger("channels_redis.pubsub")
    assert any(isinstance(f, layer.PubSubOutageFilter) for f in chatty.filters)
    exc = redis.exceptions.ConnectionError("Connection closed by server.")
    message = "Unexpected exception in receive task"
    record = chatty.makeRecord(chatty.name, logging.ERROR, __file__, 1, message, None, (type(exc), exc, None))

    passed = [layer.PubSubOutageFilter().filter(record) for _ in range(5)]

    assert passed == [False] * 5
    assert fresh_outage.down
    assert outage_log() == ["Channel layer unreachable: testing"]
