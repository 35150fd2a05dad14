"""ASGI entry point: Channels routes gateway paths to the proxy, everything else to Django."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
django_asgi_app = get_asgi_application()

# Imported after Django is set up: these modules use the ORM.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from gatehouse.access_log import AccessLogMiddleware  # noqa: E402
from gateway.asgi import urlpatterns as gateway_urlpatterns  # noqa: E402

application = AccessLogMiddleware(
    ProtocolTypeRouter(
        {"http": URLRouter([*gateway_urlpatterns, re_path(r"", django_asgi_app)])}
    )
)
