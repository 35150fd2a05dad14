"""Gateway overhead benchmark: client → upstream directly vs client → gateway (daphne) → upstream.

    .venv/bin/python -m bench.gateway.run [--concurrency 16] [--requests 2000] [--transports httpx,aiohttp]

Starts a fast upstream (``bench.gateway.fast_upstream``), prepares a throwaway database with one
token, then for each upstream transport of the gateway starts daphne and drives the same
``tools/call`` POSTs (JSON answers and one-event SSE answers) at a fixed concurrency. Reports
throughput and latency percentiles, and the gateway/direct throughput ratio. Results are also
written to ``bench/results/gateway-<time>.json``.

The gateway path includes everything a real request pays: token verification and the database
hop, rate limiting, JSON-RPC authorization, the audit event, and the upstream hop.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.processes import free_port, running  # noqa: E402

HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


async def drive(url: str, *, token: str | None, concurrency: int, total: int) -> dict[str, float]:
    headers = dict(HEADERS)
    if token:
        headers["Authorization"] = f"Bearer {token}"
    latencies: list[float] = []
    counter = iter(range(total))
    errors = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal errors
        for i in counter:
            body = {
                "jsonrpc": "2.0",
                "id": i,
                "method": "tools/call",
                "params": {"name": "echo", "arguments": {"text": "hi"}},
            }
            started = time.perf_counter()
            async with session.post(url, json=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    errors += 1
            latencies.append(time.perf_counter() - started)

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        warm = iter(range(min(200, total)))
        for _ in warm:  # warm-up: connections, caches, first DB connection
            async with session.post(
                url, json={"jsonrpc": "2.0", "id": 0, "method": "ping"}, headers=headers
            ) as r:
                await r.read()
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "rps": round(total / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 2),
        "p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 2),
        "errors": errors,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--transports", default="httpx,aiohttp")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gatehouse-bench-"))
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        {
            "GATEHOUSE_DATA_DIR": str(work),
            "DJANGO_SETTINGS_MODULE": "gatehouse.settings",
            "GATEHOUSE_TOKEN_RATE": "1000000/s",
            "GATEHOUSE_IP_RATE": "1000000/s",
            "GATEHOUSE_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(REPO),
        }
    )
    for name in ("DATABASE_URL", "REDIS_URL"):
        if os.environ.get(f"BENCH_{name}"):
            env[name] = os.environ[f"BENCH_{name}"]
    up_port = free_port()
    results: dict[str, Any] = {"concurrency": args.concurrency, "requests": args.requests, "runs": {}}
    with running(
        [sys.executable, "-m", "bench.gateway.fast_upstream", str(up_port)],
        env=env,
        ready_url=f"http://127.0.0.1:{up_port}/health",
        log_path=work / "upstream.log",
    ):
        upstream = f"http://127.0.0.1:{up_port}/mcp"
        # The fresh data dir gets its secret key and broker folders as under `make run`.
        subprocess.run([sys.executable, "manage.py", "prepare_data_dir"], cwd=REPO, env=env, check=True)
        token = (
            subprocess.run(
                [sys.executable, "bench/gateway/setup_db.py", upstream],
                cwd=REPO,
                env=env,
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        for mode, path in (("json", ""), ("sse", "/sse")):
            results["runs"][f"direct/{mode}"] = asyncio.run(
                drive(upstream + path, token=None, concurrency=args.concurrency, total=args.requests)
            )
        for transport in args.transports.split(","):
            gw_port = free_port()
            gw_env = dict(env, BENCH_UPSTREAM_TRANSPORT=transport)
            daphne = [
                sys.executable,
                "-m",
                "daphne",
                "--verbosity",  # as `manage.py serve` runs it: daphne's access log prints raw query strings
                "0",
                "-b",
                "127.0.0.1",
                "-p",
                str(gw_port),
                "bench.gateway.asgi:application",
            ]
            with running(
                daphne,
                env=gw_env,
                ready_url=f"http://127.0.0.1:{gw_port}/health",
                log_path=work / f"daphne-{transport}.log",
            ):
                for mode, query in (("json", ""), ("sse", "")):
                    url = f"http://127.0.0.1:{gw_port}/mcp/bench/{query}"
                    if mode == "sse":
                        # Same server entry, SSE answer: the upstream path decides.
                        subprocess.run(
                            [sys.executable, "-c", _REPOINT.format(url=upstream + "/sse")],
                            cwd=REPO,
                            env=env,
                            check=True,
                        )
                    else:
                        subprocess.run(
                            [sys.executable, "-c", _REPOINT.format(url=upstream)],
                            cwd=REPO,
                            env=env,
                            check=True,
                        )
                    results["runs"][f"gateway-{transport}/{mode}"] = asyncio.run(
                        drive(url, token=token, concurrency=args.concurrency, total=args.requests)
                    )
    print(f"\nconcurrency {args.concurrency}, {args.requests} requests per run\n")
    print(f"{'run':<24} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'ratio':>7} errors")
    for name, run in results["runs"].items():
        mode = name.split("/")[1]
        direct = results["runs"][f"direct/{mode}"]["rps"]
        run["ratio_to_direct"] = round(run["rps"] / direct, 3)
        print(
            f"{name:<24} {run['rps']:>8} {run['p50_ms']:>8} {run['p95_ms']:>8} {run['ratio_to_direct']:>7} "
            f"{run['errors']}"
        )
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"gateway-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {path.relative_to(REPO)}")
    return 0


_REPOINT = (
    "import os, django; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'gatehouse.settings');"
    " django.setup(); from upstreams.models import UpstreamServer;"
    " UpstreamServer.objects.filter(name='bench').update(url='{url}')"
)


if __name__ == "__main__":
    sys.exit(main())
