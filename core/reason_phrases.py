"""Reason phrases that daphne's HTTP server (Twisted) does not know.

Twisted's table lacks some statuses Gatehouse sends, so a rate-limited client saw
``HTTP/1.1 429 Unknown Status``. ASGI has no field for the phrase; the table is where daphne
looks, so the standard library's phrases fill its gaps (existing entries are kept).
"""

from __future__ import annotations

from http import HTTPStatus


def complete_reason_phrases() -> None:
    try:
        from twisted.web import http
    except ImportError:  # served by another ASGI server: nothing to complete
        return
    for status in HTTPStatus:
        http.RESPONSES.setdefault(status.value, status.phrase.encode("ascii"))
