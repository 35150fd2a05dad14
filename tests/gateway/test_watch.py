"""Open streams are judged by what a re-check asked about, not by what changed while it ran."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest
from asgiref.sync import async_to_sync
from channels.testing import HttpCommunicator
from django.db import OperationalError

from gateway.admission.db_pool import close_pool_connections
from gateway.admission.rules import Recheck
from gateway.flows.streamable import streamable_http
from gateway.models import SessionBinding
from gateway.services import end_session
from gateway.sessions import watch as watch_module
from gateway.sessions.watch import INTERVAL, RECHECK_DEADLINE, RECHECK_FAILED, StreamSupervisor
from tests.gateway.drivers import INIT
from tests.support.sessions import make_session
from upstreams.http import upstream_client
from upstreams.models import UpstreamServer


@pytest.fixture
def held_recheck(monkeypatch):
    """The real re-check, held at its start until the test lets it go (as a slow database would)."""
    started, release = threading.Event(), threading.Event()
    real = watch_module.recheck

    def held(**kwargs):
        started.set()
        release.wait(timeout=5)
        return real(**kwargs)

    monkeypatch.setattr(watch_module, "recheck", held)
    yield started, release
    release.set()
    close_pool_connections()  # else PostgreSQL refuses to drop the test database at the end


@pytest.mark.django_db(transaction=True)
def test_a_session_learned_while_a_recheck_runs_is_checked_next_tick_not_ended(make_token, held_recheck):
    started, release = held_recheck
    issued = make_token({"demo-sse": None})
    session = make_session(token=issued.token, server=UpstreamServer.objects.get(name="demo-sse"))

    async def scenario() -> tuple[bool, bool]:
        supervisor = StreamSupervisor()
        entry = supervisor.watch(raw_token=issued.secret, session_id=None)
        await asyncio.to_thread(started.wait, 5)
        # A legacy SSE stream learns its session (endpoint event) while that re-check is in flight.
        entry.session_id = session.id
        release.set()
        await asyncio.sleep(INTERVAL * 2.5)  # the in-flight tick and at least one that asks about it
        alive_while_active = not entry.is_ended
        await asyncio.to_thread(
            end_session, session_id=session.id, status=SessionBinding.Status.CLOSED, reason="test",
            actor="tests", notify_upstream=False,
        )
        await asyncio.sleep(INTERVAL * 2.5)
        ended_after_close = entry.is_ended and entry.reason == "session_ended"
        supervisor.unwatch(entry)
        await asyncio.sleep(INTERVAL * 1.5)  # the supervisor's loop sees no watch and stops
        return alive_while_active, ended_after_close

    assert async_to_sync(scenario)() == (True, True)


async def _in_process(
    token: str, method: str, body: dict | None = None, session_id: str | None = None
) -> dict:
    headers = [
        (b"content-type", b"application/json"),
        (b"accept", b"application/json, text/event-stream"),
        (b"authorization", f"Bearer {token}".encode()),
    ]
    if session_id:
        headers.append((b"mcp-session-id", session_id.encode()))
    payload = json.dumps(body).encode() if body else b""
    communicator = HttpCommunicator(streamable_http, method, "/mcp/demo/", body=payload, headers=headers)
    communicator.scope["url_route"] = {"kwargs": {"server": "demo"}}
    return await communicator.get_response(timeout=15)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_delete_is_not_cut_short_by_the_recheck_of_the_session_it_ends(
    make_token, register_upstream, upstream_mcp, monkeypatch
):
    """The DELETE ends its own session; a re-check landing before its answer must not turn it into a 404."""
    monkeypatch.setattr(watch_module, "INTERVAL", 0.002)  # re-check all the time: the race every run
    issued = make_token({"demo": None})
    register_upstream(name="demo", url=upstream_mcp)

    async def scenario() -> list[int]:
        statuses = []
        for _ in range(5):
            started = await _in_process(issued.secret, "POST", INIT)
            session_id = dict(started["headers"])[b"mcp-session-id"].decode()
            statuses.append((await _in_process(issued.secret, "DELETE", session_id=session_id))["status"])
        await upstream_client().aclose()
        return statuses

    try:
        assert async_to_sync(scenario)() == [200] * 5
    finally:
        close_pool_connections()


def _watch_with_recheck(monkeypatch, outcomes: list) -> tuple[bool, str, float]:
    """Run one watch against a re-check that answers ``outcomes`` in turn (an exception is raised),
    until the stream ends or the re-check was asked twice more after the last outcome (3 s at most)."""
    answers = iter(outcomes)
    asked: list[int] = []

    def scripted(**kwargs):
        asked.append(1)
        answer = next(answers, outcomes[-1])
        if isinstance(answer, Exception):
            raise answer
        return answer

    monkeypatch.setattr(watch_module, "recheck", scripted)

    async def scenario() -> tuple[bool, str, float]:
        supervisor = StreamSupervisor()
        entry = supervisor.watch(raw_token="gth_x", session_id=None)
        loop = asyncio.get_running_loop()
        started = loop.time()
        # Past the last outcome by two ticks is past RECHECK_DEADLINE of any failure among them.
        while not entry.is_ended and len(asked) < len(outcomes) + 3 and loop.time() - started < 3:
            await asyncio.sleep(0.02)
        took = loop.time() - started
        supervisor.unwatch(entry)
        return entry.is_ended, entry.reason, took

    return async_to_sync(scenario)()


def test_a_stream_whose_token_cannot_be_rechecked_ends_within_the_promise(monkeypatch):
    ended, reason, took = _watch_with_recheck(monkeypatch, [OperationalError("connection refused")])
    assert (ended, reason) == (True, RECHECK_FAILED)
    assert took <= RECHECK_DEADLINE


def test_a_recheck_that_hangs_ends_the_stream_too(monkeypatch):
    def hanging(**kwargs):
        time.sleep(2)
        return {"gth_x"}, set()

    monkeypatch.setattr(watch_module, "recheck", hanging)

    async def scenario() -> tuple[str, float]:
        supervisor = StreamSupervisor()
        entry = supervisor.watch(raw_token="gth_x", session_id=None)
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(asyncio.shield(entry.ended), timeout=3)
        supervisor.unwatch(entry)
        return entry.reason, asyncio.get_running_loop().time() - started

    reason, took = async_to_sync(scenario)()
    assert reason == RECHECK_FAILED
    assert took <= RECHECK_DEADLINE


def test_one_failed_recheck_between_good_ones_ends_nothing(monkeypatch):
    good = Recheck(good_tokens={"gth_x"}, active_sessions=set())
    ended, _, _ = _watch_with_recheck(monkeypatch, [good, OperationalError("blip"), good])
    assert not ended


def test_a_busy_event_loop_that_sees_a_prompt_answer_late_ends_nothing(monkeypatch):
    """Thousands of streams opening at once can hold the loop past the deadline; the database
    answered in time, so no stream is ended for the loop's lateness (fail closed is for the
    database that does not answer)."""
    good = Recheck(good_tokens={"gth_x"}, active_sessions=set())
    stalled = threading.Event()
    loops: list[asyncio.AbstractEventLoop] = []

    asked: list[int] = []

    def answers_then_stalls_the_loop(**kwargs):
        asked.append(1)
        if not stalled.is_set():
            stalled.set()
            # Queued before the answer reaches the loop: the loop is busy for longer than the promise.
            loops[0].call_soon_threadsafe(time.sleep, RECHECK_DEADLINE + 0.2)
        return good

    monkeypatch.setattr(watch_module, "recheck", answers_then_stalls_the_loop)

    async def scenario() -> bool:
        loops.append(asyncio.get_running_loop())
        supervisor = StreamSupervisor()
        entry = supervisor.watch(raw_token="gth_x", session_id=None)
        started = asyncio.get_running_loop().time()
        # Three re-checks after the stall: the late answer has been applied and judged by then.
        while (not entry.is_ended and len(asked) < 4
               and asyncio.get_running_loop().time() - started < RECHECK_DEADLINE * 3):
            await asyncio.sleep(0.02)
        supervisor.unwatch(entry)
        return entry.is_ended

    assert not async_to_sync(scenario)()
    assert stalled.is_set()
