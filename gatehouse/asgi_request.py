"""Django's ASGI handler, told the real length of a chunked request body.

Django buffers the whole body before building the request, but a chunked request carries no
``Content-Length``: DRF then parsed its body as empty (a 400 naming every field) and Django's
upload limit, which reads that header, never saw it (no 413). The buffered size is the truth.
"""

from __future__ import annotations

import os
from typing import IO, Any

from django.core.handlers.asgi import ASGIHandler, ASGIRequest


class MeasuredBodyRequest(ASGIRequest):
    def __init__(self, scope: dict[str, Any], body_file: IO[bytes]) -> None:
        super().__init__(scope, body_file)
        if "CONTENT_LENGTH" not in self.META:
            size = body_file.seek(0, os.SEEK_END)
            body_file.seek(0)
            if size:
                self.META["CONTENT_LENGTH"] = str(size)


class MeasuredBodyASGIHandler(ASGIHandler):
    request_class = MeasuredBodyRequest
