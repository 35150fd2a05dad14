"""The data dir (``GATEHOUSE_DATA_DIR``, default ``var/``) and the one step that prepares it.

Settings only read the environment: importing them creates and writes nothing, so a build step
(the Dockerfile's ``collectstatic``), a read-only checkout, or a test that imports settings with a
fresh data dir leaves no trace. What the embedded profile keeps on disk is made by one explicit,
idempotent step instead, ``manage.py prepare_data_dir``: ``make run`` runs it before migrating,
``manage.py serve`` before serving, the compose ``migrate`` service before migrating. It creates

- the data dir itself (Celery beat keeps its schedule there);
- the generated secret key, unless ``GATEHOUSE_SECRET_KEY`` gives one: generated once and kept, so
  sessions, CSRF tokens and credentials encrypted at rest survive restarts;
- the filesystem broker's folders, when kombu's filesystem transport is the broker.

Until it has run, settings leave ``SECRET_KEY`` empty (Django refuses to use an empty key), and
management commands (the ``gatehouse.E001`` system check; ``migrate`` before its database checks)
and the ASGI application stop naming what is missing and the command to run, instead of failing
later on a missing file or folder.
"""

from __future__ import annotations

import os
import secrets
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

SECRET_KEY_FILENAME = "secret_key"
_PREPARE = (
    "Run `gatehouse prepare_data_dir` once for this GATEHOUSE_DATA_DIR (`make run` and "
    "`gatehouse serve` run it before starting)"
)
# kombu's filesystem transport reads and writes these folders; it creates none of them itself.
_BROKER_FOLDER_OPTIONS = ("data_folder_in", "data_folder_out", "processed_folder", "control_folder")


def read_secret_key(path: Path) -> str:
    """The generated key, or ``""`` while none has been generated. Reading never creates it."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


@dataclass(frozen=True)
class DataDir:
    """What one configuration keeps on disk, computed from its settings."""

    root: Path
    # None when GATEHOUSE_SECRET_KEY gives the key: then no file is read or generated.
    secret_key_file: Path | None
    # Empty unless the broker is kombu's filesystem transport.
    broker_folders: tuple[Path, ...]
    # The data dir, when the SQLite database lives in it (SQLite creates the file, not its folder).
    database_folder: Path | None

    @classmethod
    def from_settings(cls, settings: Any) -> DataDir:
        root = Path(settings.DATA_DIR)
        folders: tuple[Path, ...] = ()
        if settings.CELERY_BROKER_URL.startswith("filesystem://"):
            options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
            folders = tuple(dict.fromkeys(Path(options[k]) for k in _BROKER_FOLDER_OPTIONS if k in options))
        database = settings.DATABASES["default"]
        database_folder = None
        if database["ENGINE"] == "django.db.backends.sqlite3":
            parent = Path(str(database["NAME"])).parent
            if parent == root or root in parent.parents:
                database_folder = parent
        return cls(root=root, secret_key_file=settings.SECRET_KEY_FILE, broker_folders=folders,
                   database_folder=database_folder)

    def missing(self) -> list[Path]:
        """What this configuration reads from the data dir and does not find there."""
        needed = [self.secret_key_file, self.database_folder, *self.broker_folders]
        return [path for path in needed if path is not None and not path.exists()]

    def require_prepared(self) -> None:
        """Refuse to start a process on a data dir that ``prepare`` has not made yet."""
        if missing := self.missing():
            raise ImproperlyConfigured(f"{self.describe(missing)} {self.hint(missing)}")

    def describe(self, missing: list[Path]) -> str:
        if not self.root.exists():
            return f"The data dir {self.root} does not exist yet."
        return f"The data dir {self.root} is not prepared: {self.names(missing)} missing."

    def hint(self, missing: list[Path]) -> str:
        if self.secret_key_file in missing:
            return f"{_PREPARE}, or give the key with GATEHOUSE_SECRET_KEY."
        return f"{_PREPARE}."

    def names(self, paths: list[Path]) -> str:
        """``broker/queue, secret_key``: paths inside the data dir named relative to it."""
        return ", ".join(str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)
                         for path in paths if path != self.root)

    def prepare(self) -> list[Path]:
        """Create whatever is missing and return what this call created.

        Idempotent, and safe when web, worker and beat prepare the same data dir at once.
        """
        created = []
        for folder in dict.fromkeys([self.root, *filter(None, [self.database_folder]), *self.broker_folders]):
            if not folder.is_dir():
                folder.mkdir(parents=True, exist_ok=True)
                created.append(folder)
        if self.secret_key_file is not None and _generate_secret_key(self.secret_key_file):
            created.append(self.secret_key_file)
        return created


def _generate_secret_key(path: Path) -> bool:
    """Write a new random key to ``path`` unless one is there; True if this call wrote it.

    The key is written to a private (0600) temporary file, then linked into place: processes
    preparing the same data dir at the same moment all end up reading one complete key.
    """
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{SECRET_KEY_FILENAME}.")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(64))
        os.link(tmp, path)
    except FileExistsError:
        return False  # another process won the race; its key is the one
    finally:
        os.unlink(tmp)
    return True
