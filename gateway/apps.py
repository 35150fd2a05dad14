from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "MCP gateway"

    def ready(self) -> None:
        from gatehouse import metrics as series
        from gateway import metrics

        # Live sessions are rows, not process state: each scrape counts them.
        series.register_scrape_collector(metrics.live_sessions)

        from gatehouse import changes
        from gateway import hot, watch
        from gateway.models import SessionBinding

        # A session that ended (or a binding removed) is forgotten by admission's cache.
        changes.publish_on_save(SessionBinding, changes.SESSION, key=lambda binding: binding.pk,
                                when=lambda binding: binding.status != SessionBinding.Status.ACTIVE)
        changes.on_change(hot.forget)
        # Open streams re-check at once on a token or session change, not at their next tick.
        hot.also_on_change(watch.nudge)
