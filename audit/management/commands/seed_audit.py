"""``manage.py seed_audit N``: append N realistic synthetic events (load testing)."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import record_many
from audit.synthetic import SyntheticAudit


class Command(BaseCommand):
    help = "Append N synthetic audit events, spread over the last --days days, with a valid chain."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("count", type=int)
        parser.add_argument("--days", type=float, default=30.0, help="Spread events over this many days.")
        parser.add_argument("--batch", type=int, default=5_000,
                            help="Events per insert (one chain lock each).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed (same seed, same events).")
        parser.add_argument("--tokens", type=int, default=400, help="How many distinct tokens to simulate.")

    def handle(self, *args: Any, count: int, days: float, batch: int, seed: int, tokens: int,
               **options: Any) -> None:
        if count < 1 or batch < 1 or days <= 0:
            raise CommandError("count, --batch and --days must be positive.")
        end = timezone.now()
        start = end - timedelta(days=days)
        latest = AuditEvent.objects.order_by("-id").values_list("created_at", flat=True).first()
        if latest is not None and latest > start:
            start = min(latest, end)  # never go back in time along the chain
        generator = SyntheticAudit(seed=seed, tokens=tokens)
        started = time.monotonic()
        written = 0
        chunk = max(batch, 50_000)
        while written < count:
            size = min(chunk, count - written)
            span = (end - start) * size / (count - written)
            written += record_many(generator.events(count=size, start=start, end=start + span),
                                   batch_size=batch, emit_log=False)
            start += span
            if options["verbosity"] >= 1 and count > chunk:
                rate = written / max(time.monotonic() - started, 1e-9)
                self.stderr.write(f"  {written}/{count} events ({rate:,.0f}/s)")
        elapsed = time.monotonic() - started
        self.stdout.write(f"Seeded {written} audit events in {elapsed:.1f}s ({written / elapsed:,.0f}/s).")
