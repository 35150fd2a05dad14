"""OpenTelemetry traces over OTLP/HTTP: off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Configured once per process by ``configure()`` (the ASGI application calls it at import). The
standard OpenTelemetry variables apply as the SDK reads them: ``OTEL_EXPORTER_OTLP_ENDPOINT``
(``/v1/traces`` is appended) or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (used as is),
``OTEL_EXPORTER_OTLP_HEADERS`` (e.g. a collector's API key), ``OTEL_SERVICE_NAME`` (default
``gatehouse``), ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*`` for the batching, and
``OTEL_TRACES_SAMPLER``. Spans leave in batches from a background thread (``BatchSpanProcessor``),
never on the request, and the queue is flushed at a clean exit.

When it is off nothing is set up: ``ENABLED`` is False, and the gateway's per-request hook is one
attribute read and one shared no-op context (``gateway.pipeline.spans``, 0.5 µs), which load runs cannot
tell apart from no hook at all.
"""

from __future__ import annotations

import os

from django.conf import settings

ENABLED: bool = settings.TRACING_ENABLED
_configured = False


def configure() -> None:
    """Install the tracer provider and its OTLP exporter, once, if tracing is on."""
    global _configured
    if not ENABLED or _configured:
        return
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    os.environ.setdefault("OTEL_SERVICE_NAME", "gatehouse")
    provider = TracerProvider(resource=Resource.create())
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    _configured = True
