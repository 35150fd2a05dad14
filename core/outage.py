"""One dependency's outage as a process sees it: logged once when it starts and once when it ends,
and tried again at most every ``retry_seconds`` meanwhile (not on every request).

Shared by the cache (``core.cache``) and the channel layer (``core.layer``), the two
things on a request's path that live on Redis and must not fail it.
"""

from __future__ import annotations

import logging
import re
import threading
import time

from core.secrets_mask import mask_secrets

logger = logging.getLogger("gatehouse.outage")


def redacted(url: str) -> str:
    """``redis://:secret@host:6379/0`` → ``redis://***@host:6379/0``: safe to log."""
    return re.sub(r"//[^/@\s]*@", "//***@", url)


class Outage:
    """Thread-safe; one per dependency and process.

    ``what`` names the dependency in the log lines, ``meanwhile`` says what the process does
    without it; ``target`` is where it lives (a URL; its password is never logged).
    """

    def __init__(self, *, what: str, meanwhile: str, target: str = "", retry_seconds: float = 2.0) -> None:
        self.what = what
        self.meanwhile = meanwhile
        self.target = redacted(target)
        self.retry_seconds = retry_seconds
        self.down_since: float | None = None
        self._retry_at = 0.0
        self._lock = threading.Lock()

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def should_try(self) -> bool:
        """True while the dependency is up; during an outage, for one caller per ``retry_seconds``."""
        if self.down_since is None:
            return True
        with self._lock:
            now = time.monotonic()
            if self.down_since is None or now >= self._retry_at:
                self._retry_at = now + self.retry_seconds  # everyone else waits for this try
                return True
            return False

    def failed(self, exc: BaseException) -> None:
        """Note a failure; only the first of an outage is logged."""
        with self._lock:
            self._retry_at = time.monotonic() + self.retry_seconds
            if self.down_since is not None:
                return
            self.down_since = time.monotonic()
        logger.warning(
            f"{self.what} unreachable: {self.meanwhile}",
            extra={"dependency": self.what, "target": self.target, "error": type(exc).__name__,
                   "detail": mask_secrets(redacted(str(exc)))[:300], "retry_seconds": self.retry_seconds},
        )

    def answered(self) -> bool:
        """Note a success; True (and logged) when it ends an outage."""
        if self.down_since is None:
            return False
        with self._lock:
            if self.down_since is None:
                return False
            seconds = time.monotonic() - self.down_since
            self.down_since = None
        logger.warning(
            f"{self.what} reachable again",
            extra={"dependency": self.what, "target": self.target, "outage_seconds": round(seconds, 1)},
        )
        return True
