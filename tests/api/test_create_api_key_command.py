"""``manage.py create_api_key``: the key alone on the last stdout line, stored only as a hash."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.api.conftest import bearer_client
from tests.factories import UserFactory
from tokens.models import ApiKey


def run(*args: str) -> list[str]:
    out = StringIO()
    call_command("create_api_key", *args, stdout=out)
    return out.getvalue().splitlines()


def test_prints_the_key_last_and_the_key_works(servers):
    UserFactory(username="ci-bot")

    lines = run("--user", "ci-bot", "--servers", "demo", "--max-ttl", "30m", "--name", "gha")

    key = lines[-1]
    assert key.startswith("gthk_")
    stored = ApiKey.objects.get()
    assert (stored.name, stored.owner.username, stored.max_ttl_seconds) == ("gha", "ci-bot", 1800)
    assert stored.scope_ceiling == {"demo": None}
    assert key.split("_")[2] not in stored.secret_hash
    assert bearer_client(key).get("/api/v1/tokens/").status_code == 200


def test_tools_narrow_the_ceiling(servers):
    UserFactory(username="ci-bot")

    run("--user", "ci-bot", "--servers", "demo,files", "--tools", "echo,files:read")

    assert ApiKey.objects.get().scope_ceiling == {"demo": ["echo"], "files": ["echo", "read"]}


def test_without_servers_the_key_may_mint_for_any_server(servers):
    UserFactory(username="ci-bot")

    run("--user", "ci-bot")

    key = ApiKey.objects.get()
    assert key.scope_ceiling is None
    assert key.max_ttl_seconds == 30 * 86400
    assert key.name == "ci-ci-bot"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--user", "nobody"], "No active user"),
        (["--user", "ci-bot", "--servers", "nope"], "Unknown server"),
        (["--user", "ci-bot", "--max-ttl", "never"], "never expire"),
        (["--user", "ci-bot", "--max-ttl", "soon"], "not seconds or a duration"),
        (["--user", "ci-bot", "--max-ttl", "1000d"], "cannot exceed the gateway's token maximum"),
        (["--user", "ci-bot", "--tools", "echo"], "--tools needs --servers"),
        # Empty lists (an unset shell variable) must not widen the key to every server or tool.
        (["--user", "ci-bot", "--servers", ""], "names no server"),
        (["--user", "ci-bot", "--servers", ","], "names no server"),
        (["--user", "ci-bot", "--servers", "demo", "--tools", ","], "names no tool"),
    ],
)
def test_bad_arguments_fail_with_a_message(servers, args, message):
    UserFactory(username="ci-bot")

    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not ApiKey.objects.exists()
