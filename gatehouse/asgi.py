"""ASGI entry point: Channels routes gateway paths to the proxy, everything else to Django.

Start it with ``manage.py serve`` (daphne without its raw access log, data dir prepared first).
A server started some other way on a data dir that was never prepared stops here, naming the
step to run, instead of answering with an empty secret key.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
django.setup(set_prefix=False)  # what get_asgi_application() does, before our handler is built

# Imported after Django is set up: these modules use the ORM.
from channels.routing import ProtocolTypeRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from core import tracing  # noqa: E402
from core.asgi_routing import asgi_route, asgi_router  # noqa: E402
from core.data_dir import DataDir  # noqa: E402
from core.reason_phrases import complete_reason_phrases  # noqa: E402
from gatehouse.access_log import AccessLogMiddleware  # noqa: E402
from gatehouse.asgi_request import MeasuredBodyASGIHandler  # noqa: E402
from gateway.asgi import urlpatterns as gateway_urlpatterns  # noqa: E402

DataDir.from_settings(settings).require_prepared()
tracing.configure()

django_asgi_app = MeasuredBodyASGIHandler()
complete_reason_phrases()

application = AccessLogMiddleware(
    ProtocolTypeRouter(
        {"http": asgi_router([*gateway_urlpatterns, asgi_route(r"", django_asgi_app)])}
    )
)
