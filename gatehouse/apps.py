from django.apps import AppConfig


class GatehouseConfig(AppConfig):
    """The project package as an app: the data-dir check, the heartbeats table and the
    ``bootstrap_admin``, ``prepare_data_dir`` and ``serve`` commands. (Sign-ins are audited by
    ``audit``.)"""

    name = "gatehouse"
    verbose_name = "Gatehouse"

    def ready(self) -> None:
        from django.core import checks

        # Imported at start-up, so the heartbeats' grace period counts from the process start.
        from core import heartbeats  # noqa: F401
        from gatehouse.checks import data_dir_prepared

        checks.register(data_dir_prepared)
