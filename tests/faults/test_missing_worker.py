"""The Celery worker (or beat) is gone: nothing ends sessions or sends upstream DELETEs any more.

The fault: the worker process that runs beat's sweeps dies (``kill -9``) and is not restarted.

What the client sees: nothing at once: the gateway keeps serving, and revoked tokens are still
refused on every request and open stream (that needs no worker). Idle and too-old sessions stop
being ended, and owed upstream DELETEs wait in the outbox.

What the operator sees: ``/ready``'s ``background.sweeps`` says ``no session sweep for N s`` once
``3 x GATEHOUSE_SWEEP_SECONDS + 2 s`` passed without one (a freshly started process is given that
long before anything is called stale). The status stays 200, so web instances stay in the load
balancer, unless ``GATEHOUSE_READY_REQUIRES_SWEEPS`` is set: then it is 503 with
``"failed": ["sweeps"]``.

Recovery: the first sweep of a new worker clears it, and that sweep does the work that waited.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import httpx
import pytest

from core.models import Heartbeat
from tests.faults.conftest import wait_until
from tests.support.processes import daphne_args, free_port, running

pytestmark = pytest.mark.integration

# The web processes judge staleness with GATEHOUSE_SWEEP_SECONDS=2 (the workers sweep every 1 s):
# a freshly started process is given 8 s, which a loaded machine's start-up cannot eat up.
WEB_SWEEP_SECONDS = 2
STALE_AFTER = 3 * WEB_SWEEP_SECONDS + 2


@pytest.fixture
def daphne(gatehouse_env, tmp_path) -> Iterator[Callable[..., str]]:
    with contextlib.ExitStack() as stack:
        def start(**env: str) -> str:
            port = free_port()
            stack.enter_context(running(daphne_args(port),
                                        env=gatehouse_env({"GATEHOUSE_SWEEP_SECONDS": str(WEB_SWEEP_SECONDS),
                                                           **env}),
                                        ready_url=f"http://127.0.0.1:{port}/health",
                                        log_path=tmp_path / f"daphne-{port}.log"))
            return f"http://127.0.0.1:{port}"

        yield start


def _ready(url: str) -> httpx.Response:
    return httpx.get(f"{url}/ready", timeout=15)


def _sweeps(url: str) -> str:
    return _ready(url).json()["background"]["sweeps"]


def test_ready_reports_a_missing_worker_and_recovers_when_one_returns(workers, daphne):
    lenient = daphne()
    strict = daphne(GATEHOUSE_READY_REQUIRES_SWEEPS="true")
    # Just started, no sweep ever: not stale yet, so `make run` and orchestrators see it ready.
    assert not Heartbeat.objects.exists()
    first = _ready(strict)
    assert first.status_code == 200, first.text
    assert first.json()["background"] == {"sweeps": "ok"}

    worker = workers.start()
    wait_until(Heartbeat.objects.exists, what="the first sweep's heartbeat")
    assert _sweeps(lenient) == "ok"
    worker.kill()

    report = wait_until(lambda: (s := _sweeps(lenient)) != "ok" and s, timeout=STALE_AFTER + 10,
                        what="/ready to report the missing worker")
    assert report.startswith("no session sweep for "), report
    assert "Celery worker" in report
    lenient_answer = _ready(lenient)
    assert lenient_answer.status_code == 200  # the gateway still serves: stay in the load balancer
    assert lenient_answer.json()["status"] == "ok"
    strict_answer = _ready(strict)
    assert strict_answer.status_code == 503, strict_answer.text
    assert strict_answer.json()["failed"] == ["sweeps"]
    assert strict_answer.json()["checks"] == {
        "database": "ok", "cache": "ok", "channel_layer": "ok", "broker": "ok",
    }

    workers.start()
    wait_until(lambda: _ready(strict).status_code == 200, timeout=30, what="/ready to recover")
    assert _sweeps(lenient) == "ok"


def test_a_deployment_that_never_swept_is_reported_once_its_grace_is_over(daphne):
    strict = daphne(GATEHOUSE_READY_REQUIRES_SWEEPS="true")
    assert _ready(strict).status_code == 200
    answer = wait_until(lambda: (r := _ready(strict)).status_code == 503 and r, timeout=STALE_AFTER + 10,
                        what="/ready to report that no sweep ever ran")
    assert answer.json()["background"]["sweeps"].startswith("no session sweep yet")
