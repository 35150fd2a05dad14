"""The README is the front door and docs/ the operator's manual; these checks keep them true.

Every environment variable the code reads is in the configuration table of docs/configuration.md
(and nothing stale is), the quickstart commands exist, the README stays short, every relative link
between the pages lands on a file (and heading) that exists, each area has its page, and no page
starts the web process in a way that logs raw tokens."""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path

from tests.support.processes import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()
CONTRIBUTING = (REPO_ROOT / "CONTRIBUTING.md").read_text()
DOCS = REPO_ROOT / "docs"
CONFIGURATION = (DOCS / "configuration.md").read_text()
SETTINGS = (REPO_ROOT / "gatehouse" / "settings.py").read_text()
# The apps: where a variable read outside settings.py (the port, the tracing SDK's) would be.
PRODUCT_CODE = ("gatehouse", "core", "upstreams", "tokens", "gateway", "api", "audit")
README_MAX_LINES = 300


def pages() -> list[Path]:
    """Every page of documentation: the README, CONTRIBUTING.md, the changelog, the security policy
    and docs/*.md."""
    return [REPO_ROOT / "README.md", REPO_ROOT / "CONTRIBUTING.md", REPO_ROOT / "CHANGELOG.md",
            REPO_ROOT / "SECURITY.md", *sorted(DOCS.glob("*.md"))]


def all_pages_text() -> str:
    return "\n".join(page.read_text() for page in pages())


def variables_read_by_settings() -> set[str]:
    names = set(re.findall(r"""env\.\w+\(\s*["']([A-Z][A-Z0-9_]+)["']""", SETTINGS))
    names |= set(re.findall(r"""_required\(\s*["']([A-Z][A-Z0-9_]+)["']""", SETTINGS))
    return names


def variables_read_elsewhere() -> set[str]:
    """Variables the apps read outside settings.py: through ``StrictEnv()`` (any name), or from
    ``os.environ`` (Gatehouse's own and the tracing SDK's; not PATH, HOME or Django's)."""
    names: set[str] = set()
    for app in PRODUCT_CODE:
        for path in (REPO_ROOT / app).rglob("*.py"):
            if path.name == "settings.py" and app == "gatehouse":
                continue
            source = path.read_text()
            names |= set(re.findall(r"""StrictEnv\(\)\.\w+\(\s*["']([A-Z][A-Z0-9_]+)["']""", source))
            names |= {
                name for name in re.findall(
                    r"""os\.environ(?:\.get|\.setdefault|\.pop)?[(\[]\s*["']([A-Z][A-Z0-9_]+)["']""", source)
                if name.startswith(("GATEHOUSE_", "OTEL_"))
            }
    return names


def variables_read() -> set[str]:
    return variables_read_by_settings() | variables_read_elsewhere()


def configuration_table() -> set[str]:
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)` \|", CONFIGURATION, re.MULTILINE))


def test_the_variable_scan_sees_settings():
    assert {"GATEHOUSE_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "GATEHOUSE_MAX_BODY_BYTES"} <= (
        variables_read_by_settings()
    )
    assert {"PORT", "OTEL_SERVICE_NAME"} <= variables_read_elsewhere()


def test_every_environment_variable_is_documented():
    missing = variables_read() - configuration_table()
    assert not missing, f"add these to the table in docs/configuration.md: {sorted(missing)}"


def test_no_documented_variable_is_stale():
    stale = configuration_table() - variables_read()
    assert not stale, f"docs/configuration.md documents variables no code reads: {sorted(stale)}"


def test_quickstart_commands_are_make_targets():
    makefile = (REPO_ROOT / "Makefile").read_text()
    for target in ("run", "test", "lint"):
        assert f"make {target}" in README
        assert re.search(rf"^{target}:", makefile, re.MULTILINE)
    assert "make bench" in (DOCS / "performance.md").read_text()
    assert re.search(r"^bench:", makefile, re.MULTILINE)


def test_the_readme_is_a_front_door():
    lines = len(README.splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail to docs/"


# Each area, on the page that holds it.
SECTIONS = {
    "README.md": ("## Quickstart", "## Connect a client",
                  "## Connect Claude, ChatGPT, VS Code or Cursor with only the URL",
                  "## Configuration", "## Where to go next"),
    "CONTRIBUTING.md": ("## Layout", "## Tests: which tier to run", "## Lint", "## Adding things"),
    "docs/configuration.md": ("# Configuration",),
    "docs/deployment.md": ("## Starting the pieces by hand", "## Scaling out", "## Docker and docker compose",
                           "## Brokers", "## stdio servers"),
    "docs/identity.md": ("## Console sign-in with OpenID Connect", "## Identity to upstreams",
                         "## Trusted issuers"),
    "docs/operations.md": ("## Endpoints", "## Logs", "## Metrics", "## Traces", "## Console", "## Audit",
                           "## Audit webhook (SIEM)", "## Background work (Celery)",
                           "## Management commands", "## Tool pinning"),
    "docs/failure-behaviour.md": ("# Failure behaviour", "## How the gateway admits and refuses requests"),
    "docs/performance.md": ("## Running the benchmark", "## The latest run"),
    "docs/ci-recipes.md": ("## API keys", "## GitHub Actions", "## GitLab CI", "## The MCP client step"),
}


def test_sections_for_each_area_exist():
    for page, headings in SECTIONS.items():
        text = (REPO_ROOT / page).read_text()
        for heading in headings:
            assert re.search(rf"^{re.escape(heading)}", text, re.MULTILINE), f"{page}: no {heading!r}"


def test_the_readme_links_every_page():
    for page in pages()[1:]:
        link = page.relative_to(REPO_ROOT).as_posix()
        assert f"]({link})" in README, f"README.md does not link {link}"


def test_the_project_says_its_license_and_how_to_report_a_vulnerability():
    license_text = (REPO_ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text  # the full text, not a pointer to it
    assert "](LICENSE)" in README
    assert "Report a vulnerability" in (REPO_ROOT / "SECURITY.md").read_text()
    assert "## Unreleased" in (REPO_ROOT / "CHANGELOG.md").read_text()


def test_the_performance_page_keeps_only_the_latest_table():
    text = (DOCS / "performance.md").read_text()
    assert len(re.findall(r"^\| target \|", text, re.MULTILINE)) == 1
    assert len(re.findall(r"\b20\d\d-\d\d-\d\d\b", text)) == 1, "one dated run only"


def test_every_variable_is_in_one_table():
    assert len(re.findall(r"^\| variable \| default \| what it does \|$", CONFIGURATION, re.MULTILINE)) == 1


# --- links -------------------------------------------------------------------------------------

_FENCE = re.compile(r"^ *```.*?^ *```", re.MULTILINE | re.DOTALL)
_LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def without_code_blocks(text: str) -> str:
    return _FENCE.sub("", text)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    found = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#*$", without_code_blocks(path.read_text()), re.MULTILINE):
        base = slug(heading)
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return frozenset(found)


def relative_links(page: Path) -> list[str]:
    return [target for target in _LINK.findall(without_code_blocks(page.read_text()))
            if not re.match(r"^[a-z][a-z0-9+.-]*:", target)]


def test_the_link_scan_sees_links():
    assert "docs/configuration.md" in relative_links(REPO_ROOT / "README.md")
    assert "#the-mcp-client-step" in relative_links(DOCS / "ci-recipes.md")
    assert "quickstart" in anchors(REPO_ROOT / "README.md")
    assert "any-ci-with-only-sh-curl-and-sed" in anchors(DOCS / "ci-recipes.md")


def test_every_relative_link_points_to_an_existing_file_and_heading():
    broken = []
    for page in pages():
        for target in relative_links(page):
            file_part, _, anchor = target.partition("#")
            destination = (page.parent / file_part).resolve() if file_part else page
            if not destination.exists():
                broken.append(f"{page.relative_to(REPO_ROOT)}: {target} (no such file)")
            elif anchor and destination.suffix == ".md" and anchor not in anchors(destination):
                broken.append(f"{page.relative_to(REPO_ROOT)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def tracked_top_level_dirs() -> set[str]:
    files = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    return {name.split("/")[0] for name in files if "/" in name}


def test_every_path_the_pages_name_exists():
    """As tests/gatehouse/test_architecture_doc.py does for the map: a repository path a page
    names in backticks exists (paths the pages tell you to create, like ``ci/mcp_step.py`` in a
    CI repository, or the ``var/`` data dir, are not repository folders)."""
    top = tracked_top_level_dirs() - {"var"}
    written_by_runs = {"bench/results/"}  # make bench writes its JSON there
    missing = []
    for page in pages():
        if page.name == "architecture.md":
            continue
        for path in set(re.findall(r"`((?:[a-z_]+/)+[a-z_<>]*(?:\.py|\.md|\.toml)?)`", page.read_text())):
            if (path.split("/")[0] in top and "<" not in path and path not in written_by_runs
                    and not (REPO_ROOT / path).exists()):
                missing.append(f"{page.relative_to(REPO_ROOT)}: {path}")
    assert not missing, f"pages name paths that do not exist: {missing}"


# --- start-up lines ----------------------------------------------------------------------------

# A daphne command line: `daphne` followed by an option or an application path.
_DAPHNE_COMMAND = re.compile(r"\bdaphne\s+(?:-|[\w.]+:\w)")


def serve_commands() -> list[str]:
    """Every ``gatehouse serve`` (or ``python manage.py serve``) command the pages show, inline or
    in code blocks."""
    return sorted(set(re.findall(r"(?:(?:\.venv/bin/)?python manage\.py|\bgatehouse) serve\b[^`\n]*",
                                 all_pages_text())))


def test_the_pages_start_the_web_process_only_with_manage_py_serve():
    """Daphne started by hand logs each raw query string (``?key=gth_…`` in clear): no line of
    the README or docs does that; every start-up line is ``manage.py serve``
    (tests/gatehouse/test_serve_masks_credentials.py runs them)."""
    text = all_pages_text()
    assert not _DAPHNE_COMMAND.search(text), _DAPHNE_COMMAND.search(text).group(0)
    assert "gatehouse.asgi:application" not in text.replace(
        "daphne serving `gatehouse.asgi:application`", "")
    commands = serve_commands()
    assert any("--bind 0.0.0.0" in command and "--proxy-headers" in command for command in commands)
    assert any(command.startswith("gatehouse serve") for command in commands)
    assert any("--server uvicorn" in command for command in commands)
