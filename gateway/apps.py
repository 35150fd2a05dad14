from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "MCP gateway"

    def ready(self) -> None:
        from gatehouse import metrics as series
        from gateway import metrics

        # Live sessions are rows, not process state: each scrape counts them.
        series.register_scrape_collector(metrics.live_sessions)
