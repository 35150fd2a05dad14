"""The rules of ``gateway.admission.caches``: what a cached answer may outlive, and what it may not.

A real follower reads the real change feed (the test database); a ``Change`` row written
directly stands for another process's change.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from core import changes
from core.models import Change
from gateway.admission import caches
from gateway.admission.db_pool import run_db
from gateway.admission.rules import flush_noted


async def _following(seconds: float, during=None) -> None:
    task = asyncio.ensure_future(caches.Follower(run_db, flush_noted).run())
    try:
        deadline = time.monotonic() + 5
        while not caches.live():
            assert time.monotonic() < deadline, "the follower never read the feed"
            await asyncio.sleep(0.01)
        if during is not None:
            await during()
        await asyncio.sleep(seconds)
    finally:
        task.cancel()


@pytest.fixture
def cache():
    made: caches.HotCache[str, str] = caches.cache("test", kind=changes.TOKEN)
    yield made
    caches._caches.remove(made)


@pytest.mark.django_db(transaction=True)
def test_a_row_another_process_wrote_empties_the_entries_it_names(cache):
    seen: dict[str, str | None] = {}

    async def scenario() -> None:
        cache.put("a", "verdict-a", tag="jti-a", seen_epoch=caches.epoch())
        cache.put("b", "verdict-b", tag="jti-b", seen_epoch=caches.epoch())
        await run_db(lambda: Change.objects.create(kind=changes.TOKEN, key="jti-a", at=timezone.now()))
        deadline = time.monotonic() + 5
        while cache.get("a") is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        seen.update(a=cache.get("a"), b=cache.get("b"))

    asyncio.run(_following(0, during=scenario))
    assert seen == {"a": None, "b": "verdict-b"}


@pytest.mark.django_db(transaction=True)
def test_nothing_is_answered_from_a_cache_while_the_feed_is_not_read(cache):
    async def scenario() -> None:
        cache.put("a", "verdict", tag="jti", seen_epoch=caches.epoch())
        assert cache.get("a") == "verdict"

    asyncio.run(_following(0, during=scenario))
    # The follower stopped (as if the database stopped answering): past the deadline, no answers.
    time.sleep(caches.FEED_DEADLINE)
    assert not caches.live()
    assert cache.get("a") is None


@pytest.mark.django_db(transaction=True)
def test_an_answer_looked_up_while_a_change_arrived_is_not_kept(cache):
    async def scenario() -> None:
        before = caches.epoch()  # a lookup starts ...
        changes.deliver(changes.TOKEN, "jti")  # ... a revocation lands meanwhile ...
        cache.put("a", "stale verdict", tag="jti", seen_epoch=before)  # ... its answer is dropped
        assert cache.get("a") is None
        # Nor does an answer outlive its token.
        cache.put("b", "verdict", tag="jti-b", seen_epoch=caches.epoch(),
                  until=timezone.now() + timedelta(seconds=1))
        assert cache.get("b") == "verdict"
        await asyncio.sleep(1.1)
        assert cache.get("b") is None

    asyncio.run(_following(0, during=scenario))
