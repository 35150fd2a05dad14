"""Pytest plugin: the test run's own secret key and data dir, set before Django reads settings.

Loaded with ``-p tests.support.run_environment`` (pyproject ``addopts``) because pytest-django
imports the settings before any conftest.py runs, and settings read the environment once.

Settings never create the data dir or generate a key (``make run`` runs ``prepare_data_dir`` for
that). A test run does here what ``make run`` does, so the suite works from a fresh clone:

- ``GATEHOUSE_SECRET_KEY``: a random key for this run, inherited by every server the tests start,
  so no key file is needed;
- ``GATEHOUSE_DATA_DIR``: a temporary data dir of this run, prepared once Django is set up and
  removed at the end. A test run never writes into the checkout's ``var/`` (a developer's
  ``make run`` data) nor shares a filesystem broker queue with the worker ``make run`` started.

Either one already set in the environment wins (and a data dir given that way is kept).

Under pytest-xdist (``make test`` runs ``-n WORKERS``) every worker is a test run of its own: its own
data dir inside the run's (its filesystem broker queue, its stdio runner state) and its own Redis
database (``worker_redis_url``), so a Celery worker or change feed one test starts never takes
another worker's message. Test databases are already per process (settings name them by pid).
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from urllib.parse import urlsplit, urlunsplit

import pytest

if not os.environ.get("GATEHOUSE_SECRET_KEY"):
    os.environ["GATEHOUSE_SECRET_KEY"] = secrets.token_urlsafe(64)

# Set by the run that made the data dir, so its xdist workers (which inherit the environment)
# know the dir is the run's and take a subdir of it each.
_RUN_OWNS_DATA_DIR = "GATEHOUSE_TEST_RUN_OWNS_DATA_DIR"
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")

_OWN_DATA_DIR: str | None = None
if not os.environ.get("GATEHOUSE_DATA_DIR"):
    _OWN_DATA_DIR = os.environ["GATEHOUSE_DATA_DIR"] = tempfile.mkdtemp(prefix="gatehouse-test-data-")
    os.environ[_RUN_OWNS_DATA_DIR] = "1"
elif _WORKER and os.environ.get(_RUN_OWNS_DATA_DIR):
    # The controller removes the whole run's dir at the end, this subdir with it.
    _worker_dir = os.path.join(os.environ["GATEHOUSE_DATA_DIR"], _WORKER)
    os.makedirs(_worker_dir, exist_ok=True)
    os.environ["GATEHOUSE_DATA_DIR"] = _worker_dir


def worker_redis_url(url: str) -> str:
    """``url`` on this xdist worker's own Redis database (gw0 uses 1, gw1 2, ...; 0 without xdist)."""
    if not _WORKER.startswith("gw"):
        return url
    parts = urlsplit(url)
    database = (int(_WORKER[2:]) % 15) + 1
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


for _name in ("REDIS_URL", "CELERY_BROKER_URL", "GATEHOUSE_CELERY_BROKER_URL"):
    if os.environ.get(_name, "").startswith("redis"):
        os.environ[_name] = worker_redis_url(os.environ[_name])


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    """``manage.py prepare_data_dir`` for the run's data dir (pytest-django has set Django up)."""
    if config.option.help or config.option.version:
        return
    from django.core.management import call_command

    call_command("prepare_data_dir", verbosity=0)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWN_DATA_DIR:
        shutil.rmtree(_OWN_DATA_DIR, ignore_errors=True)
