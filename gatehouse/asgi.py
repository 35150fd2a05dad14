"""ASGI entry point: Channels routes gateway paths to the proxy, everything else to Django."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
django.setup(set_prefix=False)  # what get_asgi_application() does, before our handler is built

# Imported after Django is set up: these modules use the ORM.
from channels.routing import ProtocolTypeRouter  # noqa: E402

from gatehouse.access_log import AccessLogMiddleware  # noqa: E402
from gatehouse.asgi_request import MeasuredBodyASGIHandler  # noqa: E402
from gatehouse.asgi_routing import asgi_route, asgi_router  # noqa: E402
from gatehouse.reason_phrases import complete_reason_phrases  # noqa: E402
from gateway.asgi import urlpatterns as gateway_urlpatterns  # noqa: E402

django_asgi_app = MeasuredBodyASGIHandler()
complete_reason_phrases()

application = AccessLogMiddleware(
    ProtocolTypeRouter(
        {"http": asgi_router([*gateway_urlpatterns, asgi_route(r"", django_asgi_app)])}
    )
)
