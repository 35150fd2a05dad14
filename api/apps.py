from django.apps import AppConfig


class ApiConfig(AppConfig):
    """The REST API (DRF): thin views over the services and selectors of the other apps."""

    name = "api"
    label = "api"
