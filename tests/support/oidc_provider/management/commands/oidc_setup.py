"""``oidc_setup users FILE`` creates the users; ``oidc_setup client ID SECRET URI...`` a client;
``oidc_setup expire USER`` ends every access token of ``USER`` now (as time passing would)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone
from oauth2_provider.models import AccessToken, Application


class Command(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", choices=["users", "client", "expire"])
        parser.add_argument("values", nargs="*")

    def handle(self, *args: Any, **options: Any) -> None:
        values = options["values"]
        if options["what"] == "users":
            for name, user in json.loads(Path(values[0]).read_text()).items():
                account, _ = User.objects.get_or_create(username=name)
                account.set_password(user["password"])
                account.save()
            return
        if options["what"] == "expire":
            past = timezone.now() - timedelta(seconds=1)
            AccessToken.objects.filter(user__username=values[0]).update(expires=past)
            return
        client_id, secret, *redirect_uris = values
        Application.objects.update_or_create(
            client_id=client_id,
            defaults={
                "name": client_id, "client_secret": secret, "client_type": Application.CLIENT_CONFIDENTIAL,
                "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
                "redirect_uris": " ".join(redirect_uris), "skip_authorization": True,
                "algorithm": Application.RS256_ALGORITHM, "hash_client_secret": False,
            },
        )
