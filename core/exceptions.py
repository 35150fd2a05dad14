"""The base of every domain error. Edges (gateway, API, console, commands) map them to HTTP or CLI text."""

from __future__ import annotations


class GatehouseError(Exception):
    """Base for errors a caller is expected to translate for its user."""

    code = "error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.__doc__ or self.code)
        self.detail = detail or (self.__doc__ or self.code).strip()
