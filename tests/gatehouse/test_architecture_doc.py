"""docs/architecture.md is the map of the code: every file or folder it names exists, every app is
on it, and no code comment sends a reader to a document outside the repository."""

from __future__ import annotations

import re
import subprocess

from django.conf import settings

from tests.support.processes import REPO_ROOT

DOC = (REPO_ROOT / "docs" / "architecture.md").read_text()
LOCAL_APPS = [app for app in settings.INSTALLED_APPS if (REPO_ROOT / app).is_dir()]
# Top-level packages that are not Django apps: the foundations every app may use.
LIBRARIES = ["core"]


def test_every_path_the_map_names_exists():
    candidates = set(re.findall(r"`((?:[a-z_]+/)+[a-z_<>]*(?:\.py|\.md|\.toml)?)`", DOC))
    top = {p.name for p in REPO_ROOT.iterdir() if p.is_dir() and not p.name.startswith(".")}
    named = {path for path in candidates if path.split("/")[0] in top}
    assert len(named) > 10, named
    missing = sorted(p for p in named if "<" not in p and not (REPO_ROOT / p).exists())
    assert not missing, f"docs/architecture.md names paths that do not exist: {missing}"


def test_every_app_is_on_the_map():
    assert set(LOCAL_APPS) >= {"gatehouse", "audit", "tokens", "upstreams", "gateway", "api"}
    for app in LOCAL_APPS + LIBRARIES:
        assert f"{app}/" in DOC, f"docs/architecture.md does not mention {app}/"


def test_code_cites_no_document_outside_the_repository():
    tracked = subprocess.run(
        ["git", "grep", "-n", "-I", "-E", "DES" + r"IGN(\.md)?\b", "--",
         "*.py", "*.html", "Makefile", "Procfile", "Dockerfile", "*.yml"],
        cwd=REPO_ROOT, capture_output=True, text=True, check=False,
    ).stdout
    assert tracked == "", f"cite docs/architecture.md instead:\n{tracked}"
