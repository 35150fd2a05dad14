"""The ``gatehouse`` app's tables, defined with the foundations that use them (``core.models``).

Django finds an app's models here; they keep the ``gatehouse`` label and migration history.
"""

from core.models import Change, Heartbeat

__all__ = ("Change", "Heartbeat")
