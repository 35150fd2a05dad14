"""Prepare a benchmark database: servers ``bench`` (JSON answers) and ``bench-sse`` (SSE answers)
at the fast upstream, a token for both, and an API key (for the revocation runs). Prints JSON."""

import json
import os
import sys
from datetime import timedelta

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gatehouse.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402

from tokens.api_keys import create_api_key  # noqa: E402
from tokens.scope import TokenScope  # noqa: E402
from tokens.services import issue_token  # noqa: E402
from upstreams.models import UpstreamServer  # noqa: E402

upstream = sys.argv[1]
call_command("migrate", verbosity=0)
user, _ = get_user_model().objects.get_or_create(username="bench", defaults={"is_staff": True})
for name, url in (("bench", upstream), ("bench-sse", upstream + "/sse")):
    UpstreamServer.objects.update_or_create(name=name, defaults={"url": url, "transport": "streamable"})
scope = TokenScope.from_mapping({"bench": None, "bench-sse": None})
issued = issue_token(name="bench", owner=user, scope=scope, ttl=timedelta(hours=4), actor="bench")
key = create_api_key(name="bench", owner=user, scope_ceiling=None, max_ttl=timedelta(hours=4), actor="bench")
print(json.dumps({"token": issued.secret, "api_key": key.secret}))
