"""Benchmark the audit console at scale: list pages, filters, search, usage, export, verify.

Usage (a dedicated database; it is seeded up to --events if smaller):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/gh_audit_bench \\
        .venv/bin/python bench/audit/bench_audit.py --events 1000000
    DATABASE_URL=sqlite:////tmp/gh-audit-bench/audit.sqlite3 \\
        .venv/bin/python bench/audit/bench_audit.py --events 1000000

Each page is fetched through Django's test client as a logged-in staff user (server time:
query + template, no network), ``--repeat`` times; the table shows the median and the best.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
os.environ.setdefault("GATEHOUSE_LOG_LEVEL", "WARNING")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from audit.integrity import verify_chain  # noqa: E402
from audit.models import AuditEvent  # noqa: E402
from tests.factories import StaffUserFactory  # noqa: E402

EVENT_ROW = re.compile(rb'<td><a href="/console/audit/\d+/">')


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _timed(fn: Callable[[], object], repeat: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, min(times) * 1000, result


def _page(client: Client, url: str) -> Callable[[], int]:
    def fetch() -> int:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return len(EVENT_ROW.findall(response.content))
    return fetch


def _export(client: Client, url: str) -> dict[str, float]:
    started = time.perf_counter()
    response = client.get(url)
    assert response.status_code == 200
    first = None
    size = lines = 0
    for chunk in response.streaming_content:
        if first is None:
            first = time.perf_counter() - started
        size += len(chunk)
        lines += chunk.count(b"\n")
    total = time.perf_counter() - started
    return {"ttfb_ms": (first or total) * 1000, "total_s": total, "mib": size / 2**20, "lines": lines}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-full-export", action="store_true", help="Skip exporting every event.")
    parser.add_argument("--no-verify", action="store_true", help="Skip verify_audit over the whole chain.")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)
    existing = AuditEvent.objects.count()
    seed_seconds = None
    if existing < args.events:
        started = time.perf_counter()
        call_command("seed_audit", str(args.events - existing), "--days", "90", verbosity=1)
        seed_seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        # As autovacuum would have: fresh statistics, and (PostgreSQL) a visibility map that lets
        # the usage page read only the token index.
        cursor.execute("ANALYZE" if connection.vendor == "sqlite" else "VACUUM ANALYZE audit_auditevent")

    staff = StaffUserFactory(username="bench-admin")
    client = Client()
    client.force_login(staff)

    count = AuditEvent.objects.count()
    recent = AuditEvent.objects.order_by("-id")[:20_000]
    busiest = (AuditEvent.objects.filter(id__gte=recent[19_999].pk).exclude(token_jti="")
               .values("token_jti").annotate(n=Count("id")).order_by("-n").first()["token_jti"])
    sample = AuditEvent.objects.filter(event="mcp.tool_call", token_jti=busiest).order_by("-id").first()
    rare_owner_event = "owner=mallory&event=console.login_failed"
    now = timezone.now()
    def days_ago(days: int) -> str:
        return f"{now - timedelta(days=days):%Y-%m-%dT%H:%M}"

    old_day = f"since={days_ago(60)}&until={days_ago(59)}"
    old_mix = f"since={days_ago(80)}&until={days_ago(70)}&outcome=denied&server=jira"
    first_id = AuditEvent.objects.order_by("id").values_list("id", flat=True).first()

    cases = [
        ("list, first page", "/console/audit/"),
        ("list, deep page (oldest events)", f"/console/audit/?before={first_id + 500}"),
        ("filter event=mcp.tool_denied", "/console/audit/?event=mcp.tool_denied"),
        ("filter event=console.login_failed (rare)", "/console/audit/?event=console.login_failed"),
        ("filter event family session.*", "/console/audit/?event=session.*"),
        ("filter outcome=denied", "/console/audit/?outcome=denied"),
        ("filter token (display prefix)", f"/console/audit/?token=gth_{busiest[:8]}"),
        ("filter owner", f"/console/audit/?owner={sample.owner}"),
        ("filter server + tool", f"/console/audit/?server={sample.server}&tool={sample.tool}"),
        ("filter session", f"/console/audit/?session={sample.session_id}"),
        ("filter client IP", f"/console/audit/?client_ip={sample.client_ip}"),
        ("filter one day, 60 days ago", f"/console/audit/?{old_day}"),
        ("filter 10 days ago + denied + server", f"/console/audit/?{old_mix}"),
        ("filter owner + rare event", f"/console/audit/?{rare_owner_event}"),
        ("search 'kubernetes' (common)", "/console/audit/?q=kubernetes"),
        ("search 'upstream timeout' (~1%)", "/console/audit/?q=upstream+timeout"),
        ("search 'INC-04242' (rare)", "/console/audit/?q=INC-04242"),
        ("search absent term", "/console/audit/?q=zzqqxxnotthere"),
        ("search + server filter", "/console/audit/?q=rollback&server=k8s"),
        ("search an owner name", f"/console/audit/?q={sample.owner}"),
        ("search a tool name", f"/console/audit/?q={sample.tool}"),
        ("search a display prefix", f"/console/audit/?q=gth_{busiest[:8]}"),
        ("event detail page", f"/console/audit/{sample.pk}/"),
        ("token usage, 30 days (busiest token)", f"/console/audit/token/{busiest}/usage/"),
        ("token usage, 90 days (busiest token)", f"/console/audit/token/{busiest}/usage/?days=90"),
    ]
    print(f"\n## Audit console benchmark: {connection.vendor}, {count:,} events\n")
    if seed_seconds is not None:
        print(f"seeded {args.events - existing:,} events in {seed_seconds:.0f}s\n")
    print(f"load average at start: {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)\n")
    print("| case | median ms | best ms | rows |")
    print("|---|---:|---:|---:|")
    for label, url in cases:
        median, best, rows = _timed(_page(client, url), args.repeat)
        print(f"| {label} | {median:.1f} | {best:.1f} | {rows} |", flush=True)

    print("\n| export | first byte ms | total s | MiB | lines | peak RSS MiB |")
    print("|---|---:|---:|---:|---:|---:|")
    exports = [
        ("CSV, server + tool filter", f"/console/audit/export.csv?server={sample.server}&tool={sample.tool}"),
        ("JSONL, token filter", f"/console/audit/export.jsonl?token={busiest}"),
        ("CSV, search 'kubernetes'", "/console/audit/export.csv?q=kubernetes"),
    ]
    if not args.no_full_export:
        exports.append(("CSV, everything", "/console/audit/export.csv"))
    for label, url in exports:
        result = _export(client, url)
        print(f"| {label} | {result['ttfb_ms']:.0f} | {result['total_s']:.1f} | {result['mib']:.1f} | "
              f"{result['lines']:,} | {_rss_mib():.0f} |", flush=True)

    if not args.no_verify:
        started = time.perf_counter()
        report = verify_chain()
        print(f"\nverify_audit: {'OK' if report.ok else report.broken} over {report.count:,} events in "
              f"{time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
