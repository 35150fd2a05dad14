"""``manage.py expire_sessions``: run the session sweep once, as Celery beat does."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from gateway.services import expire_sessions


class Command(BaseCommand):
    help = "End idle, too-old and dead-token sessions now (DELETE upstream, audit session.expired)."

    def handle(self, *args: Any, **options: Any) -> None:
        sweep = expire_sessions()
        failed = len(sweep.retry_upstream)
        self.stdout.write(f"Expired {sweep.count} session(s).")
        if failed:
            self.stderr.write(
                f"{failed} upstream DELETE(s) failed; the sessions are ended here anyway, and the "
                "next sweep tries again."
            )
