"""Template filters for the sessions console: idle time at a glance, to the second when short."""

from __future__ import annotations

from datetime import datetime

from django import template

register = template.Library()


@register.filter
def elapsed_since(start: datetime | None, now: datetime) -> str:
    """``42 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``: precise while a session is fresh."""
    if start is None:
        return "—"
    seconds = max(0, int((now - start).total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"
