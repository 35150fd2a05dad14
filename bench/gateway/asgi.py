"""The Gatehouse ASGI app with the upstream HTTP transport chosen by ``BENCH_UPSTREAM_TRANSPORT``."""

import os

from upstreams.http import use_transport

use_transport(os.environ.get("BENCH_UPSTREAM_TRANSPORT", "aiohttp"))

from gatehouse.asgi import application  # noqa: E402

__all__ = ["application"]
