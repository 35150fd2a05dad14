"""The gateway's request flows, one module per transport.

A flow module is named by its transport's registry entry (``Transport.flow``) and exposes
``routes`` (URL patterns of ASGI apps built with ``gateway.pipeline.steps.asgi_app``) and ``prefixes``
(the first path segments it owns, so the catch-all JSON 404 covers them). Every flow opens with
``gateway.pipeline.steps.admit_request`` and relays with ``gateway.upstream.relay``; the session
steps they share are ``gateway.sessions.lifecycle``; what is left in a flow is what its transport
does differently.
"""

from __future__ import annotations

# The server name in a flow's paths (``/<prefix>/<server>/``).
SERVER = r"(?P<server>[-a-zA-Z0-9_]{1,64})"
