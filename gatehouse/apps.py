from django.apps import AppConfig


class GatehouseConfig(AppConfig):
    """The project package as an app: the bootstrap command. (Sign-ins are audited by ``audit``.)"""

    name = "gatehouse"
    verbose_name = "Gatehouse"
