"""What ``make bench`` starts: the upstream, nginx, the bare proxy and Gatehouse, each a ``Target``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.gateway import bare_proxy
from tests.support.processes import free_port, running

REPO = Path(__file__).resolve().parents[2]
PG_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gatehouse_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/7")
SERVERS = ("daphne", "uvicorn")

NGINX_CONF = """
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  client_body_temp_path {work}/nginx-body;
  proxy_temp_path {work}/nginx-proxy;
  upstream up {{ server 127.0.0.1:{up}; keepalive 128; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
    }}
  }}
}}
"""


@dataclass
class Target:
    name: str
    base: str
    pid: int
    server: str = ""
    gatehouse: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    api_key: str = ""

    # Gatehouse routes by server name; the others by path (``/mcp``, ``/mcp/sse``).
    def url(self, server: str) -> str:
        if self.gatehouse:
            return f"{self.base}/mcp/{server}/"
        return f"{self.base}/mcp" + ("/sse" if server.endswith("-sse") else "")

    def describe(self) -> dict[str, Any]:
        return {"base": self.base, "server": self.server, "gatehouse": self.gatehouse}


@dataclass
class Lab:
    work: Path
    stack: contextlib.ExitStack
    skipped: dict[str, str]
    _env: dict[str, str] = field(default_factory=dict)
    _pg_env: dict[str, str] | None = None

    def _start(self, name: str, args: list[str], env: dict[str, str], port: int) -> int:
        process = self.stack.enter_context(
            running(
                args, env=env, ready_url=f"http://127.0.0.1:{port}/health", log_path=self.work / f"{name}.log"
            )
        )
        return process.pid

    def upstream(self) -> Target:
        port = free_port()
        self._env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self._env.update(
            PYTHONPATH=str(REPO),
            GATEHOUSE_TOKEN_RATE="100000000/s",
            GATEHOUSE_IP_RATE="100000000/s",
            GATEHOUSE_API_RATE="100000/m",
            BENCH_UPSTREAM=f"http://127.0.0.1:{port}",
            BENCH_BARE_SECRET="bench-secret-of-at-least-thirty-two-bytes",
        )
        pid = self._start(
            "upstream", [sys.executable, "-m", "bench.gateway.fast_upstream", str(port)], self._env, port
        )
        return Target(name="direct", base=f"http://127.0.0.1:{port}", pid=pid)

    def all_targets(self, up: Target) -> list[Target]:
        found = [up]
        nginx = self._nginx(up)
        if nginx:
            found.append(nginx)
        for server in SERVERS:
            found.append(self._bare(server))
        embedded = self._prepare("embedded", {})
        for server in SERVERS:
            found.append(self._gatehouse(f"gatehouse-{server}", server, embedded))
        pg = self._postgres_env()
        if pg is not None:
            self._pg_env = self._prepare("pg", pg)
            for server in SERVERS:
                found.append(self._gatehouse(f"gatehouse-pg-{server}", server, self._pg_env))
        return found

    def second_instance(self, chosen: list[Target]) -> tuple[Target, Target] | None:
        """A second daphne instance on the PostgreSQL + Redis database, paired with the first."""
        first = next((t for t in chosen if t.name == "gatehouse-pg-daphne"), None)
        if first is None or self._pg_env is None:
            self.skipped["revocation"] = "needs PostgreSQL + Redis"
            return None
        return first, self._gatehouse("gatehouse-pg-daphne-b", "daphne", self._pg_env)

    def _nginx(self, up: Target) -> Target | None:
        binary = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
        if binary is None:
            self.skipped["nginx"] = "nginx not installed (apt-get install nginx-light)"
            return None
        port = free_port()
        conf = self.work / "nginx.conf"
        conf.write_text(NGINX_CONF.format(work=self.work, up=up.base.rsplit(":", 1)[1], port=port))
        args = [binary, "-c", str(conf), "-p", str(self.work), "-g", "daemon off;"]
        process = self.stack.enter_context(
            running(args, env=self._env, ready_url=None, log_path=self.work / "nginx.log")
        )
        _wait(f"http://127.0.0.1:{port}/health")
        return Target(name="nginx", base=f"http://127.0.0.1:{port}", pid=process.pid, server="nginx")

    def _bare(self, server: str) -> Target:
        port = free_port()
        pid = self._start(
            f"bare-{server}", _asgi(server, "bench.gateway.bare_proxy:application", port), self._env, port
        )
        return Target(
            name=f"bare-{server}",
            base=f"http://127.0.0.1:{port}",
            pid=pid,
            server=server,
            headers={"Authorization": f"Bearer {bare_proxy.token()}"},
        )

    def _postgres_env(self) -> dict[str, str] | None:
        try:
            import psycopg
            import redis

            redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
            admin = PG_URL.rsplit("/", 1)[0] + "/postgres"
            name = PG_URL.rsplit("/", 1)[1]
            with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{name}"')
        except Exception as exc:
            self.skipped["postgres+redis"] = f"{type(exc).__name__}: {exc}"
            return None
        return {"DATABASE_URL": PG_URL, "REDIS_URL": REDIS_URL}

    def _prepare(self, name: str, extra: dict[str, str]) -> dict[str, str]:
        data = self.work / f"data-{name}"
        env = dict(
            self._env, GATEHOUSE_DATA_DIR=str(data), DJANGO_SETTINGS_MODULE="gatehouse.settings", **extra
        )
        subprocess.run(
            [sys.executable, "manage.py", "prepare_data_dir"],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
        )
        made = subprocess.run(
            [sys.executable, "bench/gateway/setup_db.py", f"{self._env['BENCH_UPSTREAM']}/mcp"],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        env.update(
            {f"BENCH_{k.upper()}": v for k, v in json.loads(made.stdout.strip().splitlines()[-1]).items()}
        )
        return env

    def _gatehouse(self, name: str, server: str, env: dict[str, str]) -> Target:
        port = free_port()
        if server == "daphne":
            args = [sys.executable, "manage.py", "serve", "--port", str(port)]
        else:
            args = [sys.executable, "manage.py", "serve", "--server", "uvicorn", "--port", str(port)]
        pid = self._start(name, args, env, port)
        return Target(
            name=name,
            base=f"http://127.0.0.1:{port}",
            pid=pid,
            server=server,
            gatehouse=True,
            headers={"Authorization": f"Bearer {env['BENCH_TOKEN']}"},
            api_key=env["BENCH_API_KEY"],
        )


def _asgi(server: str, app: str, port: int) -> list[str]:
    if server == "daphne":
        return [sys.executable, "-m", "daphne", "--verbosity", "0", "-b", "127.0.0.1", "-p", str(port), app]
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "--no-access-log",
        "--log-level",
        "warning",
        "--lifespan",
        "off",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        app,
    ]


def _wait(url: str) -> None:
    import time

    for _ in range(100):
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(url, timeout=1)
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} never answered")
