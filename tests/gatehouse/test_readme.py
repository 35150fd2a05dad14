"""The README is the operator's manual: every environment variable settings.py reads is in its
configuration table, and the quickstart commands exist."""

from __future__ import annotations

import re

from tests.support.processes import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
SETTINGS = (REPO_ROOT / "gatehouse" / "settings.py").read_text()


def variables_read_by_settings() -> set[str]:
    names = set(re.findall(r"""env\.\w+\(\s*["']([A-Z][A-Z0-9_]+)["']""", SETTINGS))
    names |= set(re.findall(r"""_required\(\s*["']([A-Z][A-Z0-9_]+)["']""", SETTINGS))
    return names


def configuration_table() -> set[str]:
    section = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", section, re.MULTILINE))


def test_the_variable_scan_sees_settings():
    assert {"GATEHOUSE_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "GATEHOUSE_MAX_BODY_BYTES"} <= (
        variables_read_by_settings()
    )


def test_every_environment_variable_is_documented():
    missing = variables_read_by_settings() - configuration_table()
    assert not missing, f"add these to the README configuration table: {sorted(missing)}"


def test_no_documented_variable_is_stale():
    stale = configuration_table() - variables_read_by_settings() - {"PORT"}
    assert not stale, f"the README documents variables settings.py no longer reads: {sorted(stale)}"


def test_quickstart_commands_are_make_targets():
    makefile = (REPO_ROOT / "Makefile").read_text()
    for target in ("run", "test", "lint"):
        assert f"make {target}" in README
        assert re.search(rf"^{target}:", makefile, re.MULTILINE)


def test_sections_for_each_area_exist():
    for heading in ("## Quickstart", "## Configuration", "## Architecture", "## Scaling out", "## Console",
                    "## Gateway", "## Audit", "## Tokens from CI"):
        assert heading in README


# A daphne command line: `daphne` followed by an option or an application path.
_DAPHNE_COMMAND = re.compile(r"\bdaphne\s+(?:-|[\w.]+:\w)")


def serve_commands() -> list[str]:
    """Every ``manage.py serve`` command the README shows (inline code or code blocks)."""
    return re.findall(r"(?:\.venv/bin/)?python manage\.py serve[^`\n]*", README)


def test_the_readme_starts_the_web_process_only_with_manage_py_serve():
    """Daphne started by hand logs each raw query string (``?key=gth_…`` in clear): no line of
    the README does that; every start-up line is ``manage.py serve``
    (tests/gatehouse/test_serve_masks_credentials.py runs them)."""
    assert not _DAPHNE_COMMAND.search(README), _DAPHNE_COMMAND.search(README).group(0)
    assert "gatehouse.asgi:application" not in README.replace(
        "daphne serving `gatehouse.asgi:application`", "")
    commands = serve_commands()
    assert any("--bind 0.0.0.0" in command and "--proxy-headers" in command for command in commands)
    assert any(command.startswith(".venv/bin/python manage.py serve") for command in commands)
