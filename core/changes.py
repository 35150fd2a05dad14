"""The change feed: how every process learns that a token, a server or a session changed.

The gateway answers steady-state requests from per-process caches (``gateway.admission.caches``): the token
verdict, the upstream target and the session binding. Whatever would make the database refuse
what a cache would admit (a revocation, a rotation, an edited or disabled server, an ended
session, a deactivated owner, a distrusted issuer, a connected account disconnected, broken or
replaced) is *published* here, by whichever process
makes the change (a console view, the REST API, a management command, a Celery sweep):

- a ``Change`` row is written **in the transaction of the change itself**, so a committed
  revocation always has its row, and a rolled-back one never does;
- once that transaction commits, the handlers of **this process** run at once, so the instance
  that revoked refuses the very next request;
- every gateway process follows the rows (``gateway.admission.caches.follow``, every ``POLL_SECONDS``) and
  runs the same handlers, so other instances forget within one poll (50 ms) plus its query.

Why the database and not the channel layer: every process that changes tokens already holds a
database connection (a CLI or a Celery worker has no channel layer worth the name in the embedded
default, where the layer is in-memory), a row cannot be lost to a reconnect the way a pub/sub
message can, and its reader always knows how far it has read. A bulk change of more than
``MAX_KEYS`` keys is published as one "everything of this kind" row.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Model
from django.db.models.signals import post_delete, post_save
from django.utils import timezone

from core.models import Change

logger = logging.getLogger("gatehouse.changes")

# What can change. ``key`` is the token's jti, the server's name, the session's id, the account's
# ``USER_ID:SERVER_ID``; "" = all.
TOKEN = "token"
SERVER = "server"
SESSION = "session"
# A person's connected account for a server (key ``USER_ID:SERVER_ID``, ``upstreams.accounts``).
ACCOUNT = "account"
KINDS = frozenset({TOKEN, SERVER, SESSION, ACCOUNT})
ALL = ""

MAX_KEYS = 100
# How often a gateway process reads the feed; the cross-instance delay of a change.
POLL_SECONDS = 0.05
# Rows kept this long, for a reader that was busy (a full flush covers anyone further behind).
RETAIN_SECONDS = 600
# Rows read again behind the newest id seen: ids are taken at insert, rows become visible at
# commit, so on PostgreSQL a row can appear behind a newer one. Re-reading is harmless.
LOOKBACK_IDS = 64

Handler = Callable[[str, str], None]


@dataclass(frozen=True)
class Seen:
    """A feed row as a reader needs it."""

    id: int
    kind: str
    key: str


_handlers: list[Handler] = []
_handlers_lock = threading.Lock()


def on_change(handler: Handler) -> None:
    """Call ``handler(kind, key)`` for every change this process makes or reads from the feed."""
    with _handlers_lock:
        if handler not in _handlers:
            _handlers.append(handler)


def deliver(kind: str, key: str) -> None:
    """Run this process's handlers for one change (they must be quick and never raise)."""
    for handler in list(_handlers):
        try:
            handler(kind, key)
        except Exception:  # a broken handler must not stop the others, nor the change itself
            logger.exception("change handler failed", extra={"kind": kind})


def publish(kind: str, keys: Iterable[str] = (ALL,)) -> None:
    """Record that ``keys`` of ``kind`` changed, in the caller's transaction (if any).

    This process forgets them when the transaction commits; every other one within a poll.
    """
    if kind not in KINDS:
        raise ValueError(f"Unknown change kind {kind!r}.")
    wanted = sorted({k[:200] for k in keys})
    if not wanted:
        return
    if len(wanted) > MAX_KEYS or ALL in wanted:
        wanted = [ALL]
    now = timezone.now()
    Change.objects.bulk_create([Change(kind=kind, key=key, at=now) for key in wanted])

    def here() -> None:
        for key in wanted:
            deliver(kind, key)

    transaction.on_commit(here)


def newest_id() -> int:
    """Where a new reader starts: after every row already there (its caches start empty)."""
    last = Change.objects.order_by("-id").values_list("id", flat=True).first()
    return last or 0


def read_since(after_id: int, *, seen: Collection[int] = ()) -> list[Seen]:
    """Rows from ``LOOKBACK_IDS`` before ``after_id`` on, oldest first, except the ids in ``seen``
    (what the reader already applied): a poll with nothing new returns nothing (an idle gateway
    process spent about 3 % of a core re-reading the lookback window 20 times a second)."""
    rows = Change.objects.filter(id__gt=max(0, after_id - LOOKBACK_IDS))
    if seen:
        rows = rows.exclude(id__in=list(seen))
    found = rows.order_by("id").values_list("id", "kind", "key")[:1000]
    return [Seen(id=i, kind=k, key=key) for i, k, key in found]


def prune() -> int:
    """Drop rows older than ``RETAIN_SECONDS`` (the session sweep calls this)."""
    cutoff = timezone.now() - timedelta(seconds=RETAIN_SECONDS)
    deleted, _ = Change.objects.filter(at__lt=cutoff).delete()
    return deleted


def publish_on_save(
    model: type[Model],
    kind: str,
    *,
    key: Callable[[Any], str] = lambda instance: ALL,
    when: Callable[[Any], bool] = lambda instance: True,
    ignore_fields: frozenset[str] = frozenset(),
    on_create: bool = False,
) -> None:
    """Publish a change of ``kind`` whenever a ``model`` row is saved or deleted; a created row
    only ``on_create`` (a new row usually invalidates nothing: nothing could have cached it).

    ``key`` names what changed (default: everything of ``kind``); ``when`` filters saves; a save of
    only ``ignore_fields`` (bookkeeping such as a last-login time) publishes nothing. Bulk
    ``QuerySet.update`` sends no signal: services that use it publish themselves.
    """

    def saved(
        sender: type[Model], instance: Any, created: bool, update_fields: Any = None, **_: Any
    ) -> None:
        bookkeeping = bool(update_fields) and set(update_fields) <= ignore_fields
        if (created and not on_create) or bookkeeping or not when(instance):
            return
        publish(kind, [key(instance)])

    def deleted(sender: type[Model], instance: Any, **_: Any) -> None:
        publish(kind, [key(instance)])

    uid = f"gatehouse.changes:{model._meta.label}:{kind}"
    post_save.connect(saved, sender=model, weak=False, dispatch_uid=uid)
    post_delete.connect(deleted, sender=model, weak=False, dispatch_uid=uid)
