"""The README's pictures are never stale: CI takes them again with docs/screenshots.py and the
console they show (its navigation, each page's headings) must be the one the committed pictures
show. A console change that makes them stale fails here until someone runs the script."""

from __future__ import annotations

import json
import struct
import subprocess
import sys

import pytest

from tests.support.processes import REPO_ROOT

# The script builds its own data dir, database and servers (embedded); the pass changes nothing.
pytestmark = [pytest.mark.e2e, pytest.mark.integration, pytest.mark.own_environment, pytest.mark.slow]

PICTURES = ("dashboard.png", "token-page.png")


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return struct.unpack(">II", data[16:24])


def test_the_screenshot_script_shows_the_console_the_committed_pictures_show(tmp_path):
    done = subprocess.run([sys.executable, "docs/screenshots.py", "--out", str(tmp_path), "--events", "300"],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    for name in PICTURES:
        width, height = _png_size((tmp_path / name).read_bytes())
        assert width == 1280 and height >= 900, (name, width, height)
    taken = json.loads((tmp_path / "screenshots.json").read_text())
    committed = json.loads((REPO_ROOT / "docs" / "screenshots.json").read_text())
    assert taken == committed, (
        "The console no longer looks like README's pictures: run `.venv/bin/python docs/screenshots.py` "
        "and commit docs/*.png and docs/screenshots.json."
    )
    assert "Issuers" in taken["dashboard.png"]["navigation"]
    for name in PICTURES:  # every committed picture is a real one
        _png_size((REPO_ROOT / "docs" / name).read_bytes())
