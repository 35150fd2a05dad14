"""Celery tasks for token expiry: thin callers of ``tokens.expiry``."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task
from django.conf import settings

from tokens import expiry

logger = logging.getLogger("gatehouse.tokens")


@shared_task(ignore_result=True)
def expire_tokens() -> int:
    """Beat: mark tokens past their expiry as expired (``gateway.tasks.expire_sessions`` ends
    their sessions)."""
    result = expiry.expire_tokens()
    if result.expired_jtis:
        logger.info("tokens expired", extra={"count": len(result.expired_jtis)})
    return len(result.expired_jtis)


@shared_task(ignore_result=True)
def warn_expiring_tokens() -> int:
    """Beat: audit each token about to expire once, and queue an email to its owner."""
    warnings = expiry.warn_expiring_tokens()
    if settings.EMAIL_URL:
        for warning in warnings:
            email_expiry_warning.delay(token_id=warning.token_id)
    return len(warnings)


@shared_task(
    ignore_result=True,
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=30,
    retry_backoff_max=3600,
    retry_jitter=True,
    max_retries=6,
)
def email_expiry_warning(*, token_id: int) -> bool:
    return expiry.email_expiry_warning(token_id=token_id)
