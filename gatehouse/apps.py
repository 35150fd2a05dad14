from django.apps import AppConfig


class GatehouseConfig(AppConfig):
    """The project package as an app: console sign-in auditing, the data-dir check and the
    ``bootstrap_admin``, ``prepare_data_dir`` and ``serve`` commands."""

    name = "gatehouse"
    verbose_name = "Gatehouse"

    def ready(self) -> None:
        from django.core import checks

        from gatehouse import console_audit
        from gatehouse.checks import data_dir_prepared

        console_audit.connect()
        checks.register(data_dir_prepared)
