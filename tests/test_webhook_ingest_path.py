"""The webhook endpoint's hot path does the least work that keeps a delivery safe: one statement
stores a new delivery (its shop id read by the INSERT itself, no ORM session, no badge
generation bump), and the per-request hooks that do not apply to webhooks (rate limiter, cookie
session) are skipped there and only there."""

from __future__ import annotations

import uuid

import pytest
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import event, select

from plugin.extensions import db, rate_limits
from plugin.models import WebhookEvent
from plugin.services import inbox, sandbox_store
from tests.helpers import post_sandbox_webhook

PAYLOAD = {"variant_id": 1, "location_id": "default", "available": 3}


class _SpyConnection:
    """The inbox writer's driver connection, noting each statement it is given."""

    def __init__(self, connection, seen: list[str]):
        self._connection = connection
        self._seen = seen

    def execute(self, statement, *args, **kwargs):
        self._seen.append(" ".join(statement.split()))
        return self._connection.execute(statement, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._connection, name)


@pytest.fixture
def statements_during(monkeypatch):
    """Every statement an action sends: through the app's engine (SQLAlchemy's events) and
    through the inbox writer's own driver connections (which those events do not see)."""
    real_prepared = inbox.execute_prepared
    real_record_many = inbox.record_many

    def run(engine, action):
        seen: list[str] = []

        def note(_conn, _cursor, statement, *_args):
            seen.append(" ".join(statement.split()))

        def prepared(connection, name, sql, params):
            seen.append(" ".join(sql.decode().split()))
            return real_prepared(connection._connection, name, sql, params)

        monkeypatch.setattr(inbox, "execute_prepared", prepared)
        monkeypatch.setattr(
            inbox,
            "record_many",
            lambda connection, arrivals: real_record_many(
                _SpyConnection(connection, seen), arrivals
            ),
        )
        event.listen(engine, "before_cursor_execute", note)
        try:
            result = action()
        finally:
            event.remove(engine, "before_cursor_execute", note)
        return result, seen

    return run


def test_a_delivery_is_stored_with_one_statement_and_a_redelivery_with_two(
    queued_app, statements_during
):
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    client = queued_app.test_client()
    event_id = f"ingest-{uuid.uuid4()}"

    def deliver():
        return post_sandbox_webhook(
            client, "inventory_levels/update", PAYLOAD, shop_domain=shop.domain, event_id=event_id
        )

    response, seen = statements_during(db.engine, deliver)
    assert response.status_code == 200, response.data
    assert response.json["duplicate"] is False
    assert len(seen) == 1, seen
    assert seen[0].startswith("INSERT INTO webhook_events") and "FROM shops" in seen[0]
    assert not any("badge_generations" in s for s in seen)

    again, seen = statements_during(db.engine, deliver)
    assert again.status_code == 200 and again.json["duplicate"] is True
    assert again.json["id"] == response.json["id"]
    assert [s.split()[0] for s in seen] == ["INSERT", "UPDATE"], seen

    db.session.expire_all()
    stored = db.session.scalars(select(WebhookEvent).where(WebhookEvent.event_id == event_id)).one()
    assert (stored.shop_id, stored.deliveries, stored.status) == (shop.id, 2, "pending")
    assert stored.headers["X-Sandbox-Event-Id"] == event_id
    assert not any("hmac" in name.lower() for name in stored.headers)

    # A shop the app lacks: stored all the same, without a shop, still in one statement.
    unknown, seen = statements_during(
        db.engine,
        lambda: post_sandbox_webhook(
            client, "inventory_levels/update", PAYLOAD, shop_domain="nobody.sandbox.local"
        ),
    )
    assert unknown.status_code == 200, unknown.data
    assert len(seen) == 1, seen
    stored = db.session.get(WebhookEvent, unknown.json["id"])
    assert stored.shop_id is None and stored.shop_domain == "nobody.sandbox.local"


def test_webhooks_skip_the_rate_limiter_and_the_cookie_session_other_routes_keep_them(
    queued_app, monkeypatch
):
    sandbox_store.ensure_shop(db.session)
    db.session.commit()
    limiter = rate_limits.limiter
    limited: list[str] = []
    sessions: list[str] = []
    identify = limiter.identify_request
    serializer = SecureCookieSessionInterface.get_signing_serializer

    def spy_identify():
        limited.append("x")
        return identify()

    def spy_serializer(self, app):
        sessions.append("x")
        return serializer(self, app)

    monkeypatch.setattr(limiter, "identify_request", spy_identify)
    monkeypatch.setattr(SecureCookieSessionInterface, "get_signing_serializer", spy_serializer)
    client = queued_app.test_client()

    response = post_sandbox_webhook(client, "inventory_levels/update", PAYLOAD)
    assert response.status_code == 200, response.data
    assert (limited, sessions) == ([], [])
    assert "Set-Cookie" not in response.headers

    # Nor does the badge API, which every product page view calls.
    badges = client.get("/storefront/v1/badges?shop=demo.sandbox.local&variants=1")
    assert badges.status_code == 200, badges.data
    assert (limited, sessions) == ([], [])

    assert client.get("/healthz").status_code == 200
    assert limited and sessions
