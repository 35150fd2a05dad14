from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "MCP gateway"

    def ready(self) -> None:
        from core import metrics as series
        from gateway.request import request_metrics

        # Live sessions are rows, not process state: each scrape counts them.
        series.register_scrape_collector(request_metrics.live_sessions)

        from core import changes
        from gateway.admission import caches
        from gateway.models import SessionBinding
        from gateway.sessions import watch

        # A session that ended (or a binding removed) is forgotten by admission's cache.
        changes.publish_on_save(SessionBinding, changes.SESSION, key=lambda binding: binding.pk,
                                when=lambda binding: binding.status != SessionBinding.Status.ACTIVE)
        changes.on_change(caches.forget)
        # Open streams re-check at once on a token or session change, not at their next tick.
        caches.also_on_change(watch.nudge)
