"""What the runner starts for a stdio server, and where the gateway finds the runner.

``StdioCommand`` is the frozen, decrypted form of a stdio server's settings: argv (the
``--command`` string split as a POSIX shell would, never run through a shell), the environment
(``--env K=V``; values are secrets, encrypted at rest like header values and decrypted only by
``upstreams.selectors.command_of``), the working directory, the isolation (``shared``: one
process for every session; ``session``: one per MCP session) and the cap on processes.

The runner listens at ``GATEHOUSE_STDIO_RUNNER_URL`` (default ``http://127.0.0.1:8001``) and
answers only requests that carry ``X-Gatehouse-Runner-Key`` (``GATEHOUSE_STDIO_RUNNER_KEY``,
by default derived from the secret key, which every instance shares anyway).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

from django.conf import settings

from upstreams.exceptions import InvalidServerConfig

Isolation = Literal["shared", "session"]
ISOLATIONS: tuple[Isolation, ...] = ("shared", "session")
DEFAULT_MAX_PROCESSES = 10
MAX_PROCESSES_LIMIT = 1000
MAX_COMMAND_LENGTH = 2000

RUNNER_KEY_HEADER = "X-Gatehouse-Runner-Key"
# The path of one server on the runner.
RUNNER_PATH = "/servers/{name}/mcp"

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True)
class StdioCommand:
    server: str
    argv: tuple[str, ...]
    # Never logged or rendered: values are secrets (API keys of the tool behind the server).
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    cwd: str = ""
    isolation: Isolation = "shared"
    max_processes: int = DEFAULT_MAX_PROCESSES

    def __repr__(self) -> str:
        return f"StdioCommand(server={self.server!r}, argv={self.argv[:1]!r}…, isolation={self.isolation!r})"

    @property
    def fingerprint(self) -> str:
        """Changes whenever anything that needs a restart changes (the runner compares these)."""
        payload = json.dumps(
            [self.argv, sorted(self.env.items()), self.cwd, self.isolation, self.max_processes]
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    @property
    def secret_values(self) -> tuple[str, ...]:
        """Environment values long enough to mask wherever the process's output is shown."""
        return tuple(v for v in self.env.values() if len(v) >= 4)


def parse_command(text: str) -> tuple[str, ...]:
    """``"uvx mcp-server-fetch --flag"`` → argv, split as a POSIX shell would (no shell runs it)."""
    text = (text or "").strip()
    if not text:
        raise InvalidServerConfig("A stdio server needs a command, e.g. --command \"uvx mcp-server-fetch\".")
    if len(text) > MAX_COMMAND_LENGTH:
        raise InvalidServerConfig(f"The command is longer than {MAX_COMMAND_LENGTH} characters.")
    try:
        argv = tuple(shlex.split(text))
    except ValueError as exc:
        raise InvalidServerConfig(f"The command cannot be split into arguments: {exc}.") from exc
    if not argv:
        raise InvalidServerConfig("A stdio server needs a command.")
    return argv


# How to get the programs people most often run MCP servers with.
_INSTALL_HINTS = {
    "npx": "npx comes with Node.js 18 or later",
    "node": "install Node.js 18 or later",
    "uvx": "uvx comes with uv: pip install uv, or see https://docs.astral.sh/uv/",
    "uv": "pip install uv, or see https://docs.astral.sh/uv/",
    "docker": "install Docker",
}


def check_program_exists(*, command: str, env: Mapping[str, str] | None = None, cwd: str = "") -> str:
    """The path of the command's program as the stdio runner will look it up, or
    ``InvalidServerConfig`` saying it is missing. The runner shares this process's ``PATH`` (``make
    run``, the image) unless ``--env PATH=…`` gives the server another; a runner elsewhere, with
    another ``PATH``, is why the callers can skip this check."""
    program = parse_command(command)[0]
    if "/" in program:
        candidate = os.path.join(cwd, program) if cwd else program
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
        raise InvalidServerConfig(
            f"{program} is not an executable file, so the stdio runner could not start it."
        )
    path = (env or {}).get("PATH") or os.environ.get("PATH", os.defpath)
    found = shutil.which(program, path=path)
    if found:
        return found
    hint = _INSTALL_HINTS.get(program, "install it")
    raise InvalidServerConfig(
        f"{program!r} is not on the PATH the stdio runner uses, so it could not start this server: "
        f"{hint} where the runner runs, or give the program's absolute path."
    )


def parse_env_lines(lines: Iterable[str]) -> dict[str, str]:
    """``K=V`` items (``--env``, or one per line in the console) → a mapping; values may hold ``=``."""
    env: dict[str, str] = {}
    for raw in lines:
        line = raw.strip()
        if not line:
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not _ENV_NAME_RE.match(name):
            # The value may be a secret: only the name (or its absence) goes in the message.
            shown = name if _ENV_NAME_RE.match(name) else "an item"
            raise InvalidServerConfig(
                "Environment entries are NAME=value with NAME made of letters, digits and _ "
                f"({shown} is not)."
            )
        env[name] = value
    return env


def check_stdio_settings(*, command: str, env: Mapping[str, str], cwd: str, isolation: str,
                         max_processes: int) -> tuple[str, ...]:
    """Validate a stdio server's settings; returns its argv. Raises ``InvalidServerConfig``."""
    argv = parse_command(command)
    for name in env:
        if not _ENV_NAME_RE.match(name):
            raise InvalidServerConfig(f"{name!r} is not an environment variable name.")
    if cwd and not cwd.startswith("/"):
        raise InvalidServerConfig("The working directory must be an absolute path.")
    if len(cwd) > 500:
        raise InvalidServerConfig("The working directory is longer than 500 characters.")
    if isolation not in ISOLATIONS:
        raise InvalidServerConfig(f"Isolation must be one of {', '.join(ISOLATIONS)} (got {isolation!r}).")
    if not 1 <= max_processes <= MAX_PROCESSES_LIMIT:
        raise InvalidServerConfig(f"Max processes must be between 1 and {MAX_PROCESSES_LIMIT}.")
    return argv


def runner_endpoint(server: str) -> tuple[str, Mapping[str, str]]:
    """Where the gateway dials stdio server ``server``, and the header that gets it in."""
    url = settings.STDIO_RUNNER_URL + RUNNER_PATH.format(name=server)
    return url, MappingProxyType({RUNNER_KEY_HEADER: settings.STDIO_RUNNER_KEY})
