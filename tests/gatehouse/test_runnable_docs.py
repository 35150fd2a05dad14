"""Every shell block the pages mark ``<!-- runnable -->`` runs as written, from a clone, on a fresh
data dir: a command renamed, an option dropped or a wrong example fails here, not for a reader.

A page's runnable blocks run in order in one shell, as a reader in one terminal would, after what
``make run`` does first (prepare the data dir, migrate, create the first admin). The clone is this
checkout seen through symlinks, with a ``.venv`` whose ``gatehouse`` command is written by the
Makefile's own rule and whose ``python`` is this interpreter. Commands that need the server running
(``make run`` itself, clients) are not marked; tests/gatehouse/test_make_run.py starts ``make run``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gatehouse.test_readme import pages
from tests.support.processes import REPO_ROOT

MARKER = "<!-- runnable -->"
_RUNNABLE = re.compile(r"^<!-- runnable -->\n```(?:sh|bash|shell)\n(.*?)^```", re.MULTILINE | re.DOTALL)
# What a fresh clone's environment does not have: the run's own database, key and data dir.
_NOT_FROM_A_CLONE = ("DATABASE_URL", "REDIS_URL", "GATEHOUSE_SECRET_KEY", "GATEHOUSE_DATA_DIR",
                     "GATEHOUSE_PUBLIC_URL", "DJANGO_SETTINGS_MODULE", "VIRTUAL_ENV")


def runnable_blocks(page: Path) -> list[str]:
    return _RUNNABLE.findall(page.read_text())


def pages_with_runnable_blocks() -> list[Path]:
    return [page for page in pages() if runnable_blocks(page)]


def test_the_marker_is_only_ever_before_a_shell_block():
    for page in pages():
        text = page.read_text()
        assert text.count(MARKER) == len(runnable_blocks(page)), f"{page.name}: a marker not before ```sh"


def test_the_quickstart_and_first_steps_are_runnable():
    blocks = "\n".join(runnable_blocks(REPO_ROOT / "README.md"))
    for command in ("gatehouse help", "gatehouse add_server", "gatehouse issue_token"):
        assert command in blocks


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """This checkout as a fresh clone after ``make install``: its files, a ``.venv`` of this
    interpreter, and the ``gatehouse`` command written by the Makefile."""
    root = tmp_path / "clone"
    root.mkdir()
    for entry in REPO_ROOT.iterdir():
        if entry.name not in {".venv", "var", ".git"}:
            (root / entry.name).symlink_to(entry)
    bin_dir = root / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')
    (bin_dir / "python").chmod(0o755)
    (bin_dir / "activate").write_text(f'PATH="{bin_dir}:$PATH"; export PATH\n')
    (root / ".venv" / ".installed").touch()
    subprocess.run(["make", "--no-print-directory", ".venv/bin/gatehouse"], cwd=root, check=True,
                   capture_output=True)
    return root


def clone_environment(*, data_dir: Path) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items()
           if name not in _NOT_FROM_A_CLONE and not name.startswith("PYTEST")}
    # Not the checkout's var/: the fresh data dir of this test.
    env["GATEHOUSE_DATA_DIR"] = str(data_dir)
    return env


@pytest.mark.integration
def test_the_makefile_writes_a_gatehouse_command_that_works_from_any_directory(clone, tmp_path):
    env = clone_environment(data_dir=tmp_path / "data")
    result = subprocess.run([str(clone / ".venv" / "bin" / "gatehouse"), "help", "add_server"], cwd="/",
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "--command" in result.stdout


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("npx") is None, reason="the first steps' example server needs npx")
@pytest.mark.parametrize("page", pages_with_runnable_blocks(), ids=lambda page: page.name)
def test_every_runnable_block_runs_as_written(page, clone, tmp_path):
    script = "\n".join([
        "set -eu",
        # What `make run` does before it starts the processes.
        "gatehouse() { .venv/bin/gatehouse \"$@\"; }",
        "gatehouse prepare_data_dir >/dev/null",
        "gatehouse migrate --noinput >/dev/null",
        "gatehouse bootstrap_admin >/dev/null",
        "unset -f gatehouse",
        *(f"echo '--- block {number}'\n{block}" for number, block in enumerate(runnable_blocks(page), 1)),
    ])
    env = clone_environment(data_dir=tmp_path / "data")
    result = subprocess.run(["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, f"{page.name}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
