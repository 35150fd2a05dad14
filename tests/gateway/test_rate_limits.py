"""Rate limits are counted off the event loop's back and answer before anything they guard.

The per-IP and per-token hits of one request are counted together after admission (one Redis
round trip that does not block the loop, ``gateway.admission.rules.Limits``), yet they keep the order of
the rules: a client over its per-IP limit gets 429 whatever its token, and costs no database
lookup, as if counted first. (The per-token 429 and its audit row: ``test_refusals``.)
"""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import async_to_sync

from gateway.admission import db_pool, rules
from gateway.admission.credentials import Credential
from gateway.request.refusals import RateLimited, Unauthorized
from upstreams import transports


def attempt(client_ip: str, raw: str) -> BaseException:
    with pytest.raises((Unauthorized, RateLimited)) as refused:
        async_to_sync(rules.admit_fast)(
            client_ip=client_ip, credential=Credential(raw=raw, source="bearer"), server_name="demo",
            session_id=None, transport=transports.STREAMABLE,
        )
    return refused.value


@pytest.fixture
def database_lookups(monkeypatch) -> list[str]:
    """Every token the database is asked about (the real lookup runs; this only records it)."""
    asked: list[str] = []
    real = rules.DatabaseLookups.token

    def recording(self, credential):
        asked.append(credential.raw)
        return real(self, credential)

    monkeypatch.setattr(rules.DatabaseLookups, "token", recording)
    return asked


@pytest.mark.django_db(transaction=True)
def test_a_client_over_its_ip_limit_gets_429_and_costs_no_database_lookup(settings, database_lookups,
                                                                           rate_clock):
    settings.IP_RATE = "3/m"  # four attempts inside one fixed minute window: the clock stands still
    client_ip = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"  # a fresh count each run
    try:
        first = [attempt(client_ip, f"gth_unknown{n}") for n in range(3)]
        assert all(isinstance(each, Unauthorized) for each in first)
        assert len(database_lookups) == 3

        over = attempt(client_ip, "gth_unknown-over")
        assert isinstance(over, RateLimited) and over.bucket == "ip"
        assert 1 <= over.retry_after <= 60
        assert len(database_lookups) == 3, "a client over its limit still cost a database lookup"

        # Another client keeps its own count.
        assert isinstance(attempt(f"{client_ip}1", "gth_unknown-other"), Unauthorized)

        rate_clock.advance(60)  # the next window counts afresh
        assert isinstance(attempt(client_ip, "gth_unknown-next"), Unauthorized)
    finally:
        db_pool.close_pool_connections()  # else PostgreSQL refuses to drop the test database
