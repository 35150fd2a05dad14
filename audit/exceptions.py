"""Errors of the audit log, each naming a broken promise."""

from __future__ import annotations


class AuditLogError(Exception):
    """Base class for audit log errors."""


class AppendOnlyViolation(AuditLogError):
    """Something tried to change or delete an audit event outside the retention path,
    or to write one without going through ``audit.services``."""


class InvalidAuditEvent(AuditLogError, ValueError):
    """A caller passed an event the log cannot store (unknown outcome, empty name)."""
