"""Dockerfile, docker-compose.yml and Procfile: no Docker engine here, so they are linted, parsed,
and their commands are run as they would be in the containers."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.gatehouse.subprocesses import embedded_env
from tests.support.processes import REPO_ROOT, free_port, running

DOCKERFILE = (REPO_ROOT / "Dockerfile").read_text()
COMPOSE = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
PROCFILE = dict(line.split(": ", 1) for line in (REPO_ROOT / "Procfile").read_text().splitlines()
                if line.strip())
VENV_BIN = str(Path(sys.executable).parent)


def test_dockerfile_passes_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    result = subprocess.run([hadolint, "--no-color", "Dockerfile"], cwd=REPO_ROOT, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_is_multi_stage_slim_311_non_root_and_installs_the_lock_with_hashes():
    stages = re.findall(r"^FROM (\S+)(?: AS (\S+))?", DOCKERFILE, re.MULTILINE)
    assert len(stages) >= 2
    assert all(image.startswith("python:3.11-slim") for image, _ in stages)
    assert "--require-hashes" in DOCKERFILE and "requirements.lock" in DOCKERFILE
    assert re.search(r"^COPY --from=build ", DOCKERFILE, re.MULTILINE)
    user = re.findall(r"^USER (\S+)", DOCKERFILE, re.MULTILINE)
    assert user and user[-1].split(":")[0] not in {"root", "0"}


def dockerfile_cmd() -> list[str]:
    return json.loads(re.search(r"^CMD (\[.*\])$", DOCKERFILE, re.MULTILINE).group(1))


SERVE_IN_A_CONTAINER = ["python", "manage.py", "serve", "--bind", "0.0.0.0", "--proxy-headers"]


def test_every_web_start_is_manage_py_serve():
    """One start-up line, whose daphne never writes its raw access log (``?key=`` in clear):
    the container, compose's web replicas and make run's Procfile all use it; none runs daphne
    itself."""
    assert dockerfile_cmd() == SERVE_IN_A_CONTAINER
    assert COMPOSE["services"]["web"]["command"] == SERVE_IN_A_CONTAINER
    assert PROCFILE["web"].startswith("exec python manage.py serve")
    for command in (" ".join(dockerfile_cmd()), PROCFILE["web"], json.dumps(COMPOSE)):
        assert "daphne" not in command


def test_the_data_dir_is_prepared_before_migrating_everywhere():
    migrate = COMPOSE["services"]["migrate"]["command"][-1]
    assert migrate.index("manage.py prepare_data_dir") < migrate.index("manage.py migrate")
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert makefile.index("manage.py prepare_data_dir") < makefile.index("manage.py migrate")


def dockerfile_collectstatic() -> list[str]:
    """The build step's command, as the Dockerfile runs it (no secret key, no data dir)."""
    line = re.search(r"^RUN (.*manage\.py collectstatic.*)$", DOCKERFILE, re.MULTILINE).group(1)
    assert "\\" not in line and "GATEHOUSE_" not in line, "the build step needs no data dir or key"
    return line.split()


@pytest.mark.integration
def test_the_build_step_writes_no_data(tmp_path):
    """collectstatic at build time imports settings with no key and no data dir, and leaves none."""
    data_dir = tmp_path / "data"
    command = [sys.executable if word == "python" else word for word in dockerfile_collectstatic()]
    result = subprocess.run([*command, "--dry-run"], cwd=REPO_ROOT, env=embedded_env(data_dir),
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not data_dir.exists()


def test_compose_has_the_scale_out_services():
    services = COMPOSE["services"]
    assert {"postgres", "redis", "web", "worker", "beat"} <= set(services)
    web = services["web"]
    assert web["deploy"]["replicas"] == 2
    assert "ports" not in web, "replicas cannot share a published host port; the load balancer publishes"
    assert "container_name" not in web
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://") and "@postgres:5432/" in env["DATABASE_URL"]
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert "GATEHOUSE_SECRET_KEY" in env  # one key shared by every replica
    assert "worker" in services["worker"]["command"] and "beat" in services["beat"]["command"]


def test_compose_commands_are_the_procfile_commands():
    """The same worker and beat invocations locally (honcho) and in compose."""
    for name in ("worker", "beat"):
        compose_args = COMPOSE["services"][name]["command"]
        procfile_args = PROCFILE[name].removeprefix("exec ").split()
        assert compose_args[:5] == procfile_args[:5]


@pytest.mark.integration
def test_container_command_serves_health(tmp_path):
    """On a fresh data dir (a new volume) the container's command prepares it, then serves."""
    port = free_port()
    data_dir = tmp_path / "data"
    env = embedded_env(data_dir, PORT=str(port), PATH=f"{VENV_BIN}:/usr/bin:/bin")
    with running(dockerfile_cmd(), env=env, ready_url=f"http://127.0.0.1:{port}/health",
                 log_path=tmp_path / "web.log"):
        assert httpx.get(f"http://127.0.0.1:{port}/health").json() == {"status": "ok"}
        assert (data_dir / "secret_key").exists() and (data_dir / "broker" / "queue").is_dir()


WORKER_READY = r'"logger": "celery\.apps\.worker", "message": "celery@\S+ ready\."'
BEAT_STARTED = r'"logger": "celery\.beat", "message": "beat: Starting\.\.\."'


@pytest.mark.integration
@pytest.mark.parametrize(("service", "started"), [
    ("worker", [WORKER_READY]),
    ("beat", [BEAT_STARTED]),
    # docs/deployment.md promises `celery -A gatehouse worker --beat` works.
    ("worker --beat", [WORKER_READY, BEAT_STARTED]),
])
def test_celery_commands_start(tmp_path, service, started):
    if service == "worker --beat":
        command = ["celery", "-A", "gatehouse", "worker", "--beat", "--loglevel", "INFO"]
    else:
        command = COMPOSE["services"][service]["command"]
    env = embedded_env(tmp_path, PATH=f"{VENV_BIN}:/usr/bin:/bin",
                       GATEHOUSE_CELERY_QUEUE=f"deployment-test-{service.replace(' ', '')}")
    # What make run (and compose's migrate service) does before the worker and beat start.
    prepared = subprocess.run([sys.executable, "manage.py", "prepare_data_dir"], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, check=False, timeout=120)
    assert prepared.returncode == 0, prepared.stdout + prepared.stderr
    log_path = tmp_path / "celery.log"
    with running(command, env=env, ready_url=None, log_path=log_path):
        deadline = time.monotonic() + 60
        while not all(re.search(pattern, log_path.read_text()) for pattern in started):
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        # Everything it printed while starting is JSON log lines (no banner, no plain text).
        output = log_path.read_text()
    if "--quiet" in command:  # the deployed commands print no banner: only JSON log lines
        lines = [line for line in output.splitlines() if line.strip()]
        assert all(line.startswith("{") and json.loads(line) for line in lines), output
