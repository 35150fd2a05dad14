"""Who a grant is for, as the commands read it: ``--user U`` or ``--group G`` (``--team`` comes
with teams)."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth.models import Group, User

from tokens.oauth.exceptions import GrantError


def add_subject_arguments(parser: ArgumentParser) -> None:
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="Username the grant is for.")
    who.add_argument("--group", help="Group whose members the grant is for.")


def subject_of(options: dict[str, Any]) -> tuple[User | None, Group | None]:
    if options.get("user"):
        user = User.objects.filter(username=options["user"]).first()
        if user is None:
            raise GrantError(f"No user named {options['user']!r}.")
        return user, None
    group = Group.objects.filter(name=options["group"]).first()
    if group is None:
        raise GrantError(f"No group named {options['group']!r}.")
    return None, group
