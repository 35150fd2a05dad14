from django.apps import AppConfig


class GatehouseConfig(AppConfig):
    """The project package as an app: the bootstrap command and the heartbeats table.

    (Sign-ins are audited by ``audit``.)
    """

    name = "gatehouse"
    verbose_name = "Gatehouse"

    def ready(self) -> None:
        # Imported at start-up, so the heartbeats' grace period counts from the process start.
        from gatehouse import heartbeats  # noqa: F401
