"""Celery tasks of the audit app: retention (``audit.services.prune_audit``) and the SIEM webhook
(``audit.webhook``); thin callers both."""

from __future__ import annotations

import logging

from celery import shared_task

from audit import services, webhook

logger = logging.getLogger("gatehouse.audit")


@shared_task(ignore_result=True)
def prune_audit() -> int:
    """Beat, hourly: delete events past ``AUDIT_RETENTION_DAYS``, leaving a chain checkpoint."""
    deleted = services.prune_audit()
    if deleted:
        logger.info("audit events pruned", extra={"count": deleted})
    return deleted


@shared_task(ignore_result=True)
def deliver_audit_webhook() -> int:
    """Beat, every ``GATEHOUSE_AUDIT_WEBHOOK_SECONDS`` when the webhook is configured."""
    return webhook.deliver_audit_webhook().delivered
