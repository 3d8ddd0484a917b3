"""PostgreSQL unreachable (restarting, failing over): the app answers 503 with Retry-After, so a
platform retries the webhook later and a shopper's page says to try again, instead of a 500
that reads as a bad request. The fault drills (tests/drills) saw 500s during a real restart."""

from __future__ import annotations

import socket

import pytest

from plugin import create_app
from tests.conftest import base_env
from tests.shopify_webhook_helpers import post_webhook


@pytest.fixture
def unreachable_app():
    # A port nobody listens on: every connection is refused, as during a restart.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app = create_app(base_env(DATABASE_URL=f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"))
    return app


def test_a_webhook_during_a_database_outage_is_asked_to_retry(unreachable_app):
    body = {"inventory_item_id": 1, "location_id": 2, "available": 3}
    with unreachable_app.app_context():
        response = post_webhook(
            unreachable_app.test_client(), "inventory_levels/update", body, shop="a.myshopify.com"
        )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert response.get_json() == {"error": "temporarily unavailable, please retry"}


def test_the_badge_api_during_a_database_outage_says_unavailable(unreachable_app):
    response = unreachable_app.test_client().get(
        "/storefront/v1/badges?shop=a.mybigcommerce.com&variants=1"
    )
    assert response.status_code == 503
    assert "retry" in response.get_json()["error"]
