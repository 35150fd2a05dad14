import httpx
import pytest


@pytest.mark.integration
def test_daphne_serves_health(live_gateway, transactional_db):
    response = httpx.get(f"{live_gateway.url}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
