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
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile

import pytest

if not os.environ.get("GATEHOUSE_SECRET_KEY"):
    os.environ["GATEHOUSE_SECRET_KEY"] = secrets.token_urlsafe(64)

_OWN_DATA_DIR: str | None = None
if not os.environ.get("GATEHOUSE_DATA_DIR"):
    _OWN_DATA_DIR = os.environ["GATEHOUSE_DATA_DIR"] = tempfile.mkdtemp(prefix="gatehouse-test-data-")


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
