from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "audit"
    verbose_name = "Audit log"

    def ready(self) -> None:
        from celery.signals import worker_process_shutdown

        from audit import console_login
        from audit.services import flush_pending

        console_login.connect()
        # Celery's pool processes leave with os._exit (no atexit): flush queued events first.
        worker_process_shutdown.connect(
            lambda **kwargs: flush_pending(timeout=10.0), weak=False, dispatch_uid="audit.flush_pending"
        )
