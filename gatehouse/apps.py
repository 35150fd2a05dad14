from django.apps import AppConfig


class GatehouseConfig(AppConfig):
    """The project package as an app: console sign-in auditing and the bootstrap command."""

    name = "gatehouse"
    verbose_name = "Gatehouse"

    def ready(self) -> None:
        from gatehouse import console_audit

        console_audit.connect()
