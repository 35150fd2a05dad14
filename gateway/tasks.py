"""Celery tasks for gateway sessions: thin callers of ``gateway.services``."""

from __future__ import annotations

import logging

from celery import shared_task

from gateway import services

logger = logging.getLogger("gatehouse.gateway")


@shared_task(ignore_result=True)
def expire_sessions() -> int:
    """Beat: end idle, too-old and dead-token sessions; retry failed upstream DELETEs apart."""
    sweep = services.expire_sessions()
    services.queue_upstream_retries(sweep.retry_upstream)
    if sweep.count:
        logger.info(
            "sessions expired", extra={"count": sweep.count, "upstream_retry": len(sweep.retry_upstream)}
        )
    return sweep.count


@shared_task(
    ignore_result=True,
    autoretry_for=(services.UpstreamDeleteFailed,),
    retry_backoff=5,
    retry_backoff_max=600,
    retry_jitter=True,
    max_retries=8,
)
def delete_upstream_session(*, session_id: str) -> int | None:
    """Tell the upstream a session we already ended is gone, backing off while it is down."""
    return services.retry_upstream_delete(session_id=session_id)
