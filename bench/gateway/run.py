"""``make bench``: what Gatehouse adds to every MCP call, against what any proxy must pay.

    .venv/bin/python -m bench.gateway.run [--rounds 3] [--requests 1500] [--quick]

Starts everything it needs and stops it at the end: a fast upstream (``fast_upstream``); nginx in
front of it with buffering off (the price of a plain reverse proxy; skipped if nginx is missing);
the bare token-checking proxy (``bare_proxy``) and Gatehouse under daphne and under uvicorn;
Gatehouse on the embedded default (SQLite, in-memory layer) and on PostgreSQL + Redis (skipped if
they do not answer; ``BENCH_DATABASE_URL``/``BENCH_REDIS_URL`` point elsewhere; the database is
dropped and created). Then, in interleaved rounds (every target once per round, the order rotated;
medians over rounds):

- tools/call req/s and p50/p90/p99, JSON and SSE answers, concurrency 16 and 64;
- time to first event and the added per-event delay on a GET stream;
- the RSS per idle open stream at 1,000 and 5,000 streams (Gatehouse and the bare proxy, daphne);
- revocation-to-401 and revocation-to-stream-close across two instances (PostgreSQL + Redis).

Prints a table; writes ``bench/results/bench-<time>.json``. Gatehouse runs at its defaults (INFO
log to a file, audit on) except rate limits, which are off (one token at thousands of req/s).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from bench.gateway import load, revocation, targets  # noqa: E402
from bench.gateway.report import print_table  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=1500)
    parser.add_argument(
        "--quick", action="store_true", help="1 round, 500 requests, 1,000 streams, 20 revocations"
    )
    parser.add_argument(
        "--no-load", action="store_true", help="skip the req/s rounds (streams, RSS, revocation only)"
    )
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.requests = 1, 500
    work = Path(tempfile.mkdtemp(prefix="gatehouse-bench-"))
    results: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": _machine(),
        "rounds": args.rounds,
        "requests": args.requests,
        "skipped": {},
    }
    with contextlib.ExitStack() as stack:
        lab = targets.Lab(work=work, stack=stack, skipped=results["skipped"])
        up = lab.upstream()
        chosen = lab.all_targets(up)
        results["targets"] = {t.name: t.describe() for t in chosen}
        results["runs"] = (
            {} if args.no_load else _load_rounds(chosen, rounds=args.rounds, total=args.requests)
        )
        results["streams"] = _stream_rounds(chosen, rounds=args.rounds)
        counts = (1000,) if args.quick else (1000, 5000)
        results["idle_streams"] = {
            t.name: asyncio.run(
                load.idle_streams(t.url("bench"), headers=t.headers, pid=t.pid, counts=counts)
            )
            for t in chosen
            # The bare proxy under daphne too: what any daphne proxy holds per stream.
            if t.server == "daphne"
        }
        pair = lab.second_instance(chosen)
        if pair is not None:
            a, b = pair
            results["revocation"] = asyncio.run(
                revocation.measure(a.base, b.base, api_key=a.api_key, n=20 if args.quick else 200)
            )
    print_table(results)
    out = REPO / "bench" / "results"
    out.mkdir(exist_ok=True)
    path = out / f"bench-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"\nwritten to {path.relative_to(REPO)}; logs in {work}")
    return 0


def _load_rounds(chosen: list[targets.Target], *, rounds: int, total: int) -> dict[str, Any]:
    samples: dict[str, list[dict[str, float]]] = {}
    for r in range(rounds):
        order = chosen[r % len(chosen) :] + chosen[: r % len(chosen)]
        for concurrency in (16, 64):
            for mode in ("json", "sse"):
                for target in order:
                    key = f"{target.name}/{mode}/c{concurrency}"
                    cpu_before = load.cpu_seconds(target.pid)
                    found = asyncio.run(
                        load.requests(
                            target.url("bench" if mode == "json" else "bench-sse"),
                            headers=target.headers,
                            concurrency=concurrency,
                            total=total,
                        )
                    )
                    # CPU per request in the target's own processes: for a proxy, what it spends
                    # per call (the ratio that bounds its req/s on a machine it shares).
                    found["cpu_us"] = round((load.cpu_seconds(target.pid) - cpu_before) / total * 1e6)
                    samples.setdefault(key, []).append(found)
                    print(
                        f"round {r + 1}: {key:<40} {found['rps']:>8} req/s  p50 {found['p50_ms']} ms",
                        flush=True,
                    )
    return {key: _medians(runs) for key, runs in samples.items()}


def _stream_rounds(chosen: list[targets.Target], *, rounds: int) -> dict[str, Any]:
    samples: dict[str, list[dict[str, float]]] = {}
    for r in range(rounds):
        for target in chosen[r % len(chosen) :] + chosen[: r % len(chosen)]:
            samples.setdefault(target.name, []).append(
                asyncio.run(load.stream_timing(target.url("bench"), headers=target.headers))
            )
    return {key: _medians(runs) for key, runs in samples.items()}


def _medians(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]} | {"rounds": len(runs)}


def _machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "python": sys.version.split()[0],
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


if __name__ == "__main__":
    sys.exit(main())
