"""Prepare the benchmark database: one server pointing at the fast upstream, one token (printed)."""

import os
import sys
from datetime import timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from tokens.scope import TokenScope  # noqa: E402
from tokens.services import issue_token  # noqa: E402
from upstreams.models import UpstreamServer  # noqa: E402

call_command("migrate", verbosity=0)
user, _ = get_user_model().objects.get_or_create(username="bench")
UpstreamServer.objects.update_or_create(
    name="bench", defaults={"url": sys.argv[1], "transport": "streamable"}
)
issued = issue_token(
    name="bench",
    owner=user,
    scope=TokenScope.from_mapping({"bench": None}),
    ttl=timedelta(hours=2),
    actor="bench",
)
print(issued.secret)
