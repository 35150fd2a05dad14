"""Celery task for audit retention: a thin caller of ``audit.services.prune_audit``."""

from __future__ import annotations

import logging

from celery import shared_task

from audit import services

logger = logging.getLogger("gatehouse.audit")


@shared_task(ignore_result=True)
def prune_audit() -> int:
    """Beat, hourly: delete events past ``AUDIT_RETENTION_DAYS``, leaving a chain checkpoint."""
    deleted = services.prune_audit()
    if deleted:
        logger.info("audit events pruned", extra={"count": deleted})
    return deleted
