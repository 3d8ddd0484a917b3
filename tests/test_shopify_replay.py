"""A captured Shopify delivery replayed: the signature covers only the body, so nothing an
attacker can change in the headers (event id, triggered-at, shop domain) gives it a new effect.

Issue 13, defect 3: a captured body and HMAC, replayed with a new `X-Shopify-Event-Id` and
`X-Shopify-Triggered-At` = now, rolled stock back from 50 to 0. Jobs run inline here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import responses
from sqlalchemy import delete, select

from plugin.extensions import db
from plugin.models import InboxStatus, Shop, Variant, WebhookEvent, utcnow
from plugin.services import inbox
from tests import factories
from tests.shopify_webhook_helpers import ENDPOINT, fixture_bytes, post_webhook
from tests.test_shopify_webhooks import (  # noqa: F401 - fresh_buckets is an autouse fixture
    LOCATION,
    SMALL,
    fresh_buckets,
    seed_from_products_update,
    write_answer,
)
from webhooks.source import body_digest

OTHER_SHOP = "other-store.myshopify.com"
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def stock_body(available: int, updated_at: datetime) -> bytes:
    payload = json.loads(fixture_bytes("inventory_levels-update.json"))
    payload.update(available=available, updated_at=updated_at.isoformat())
    return json.dumps(payload).encode()


def small_levels() -> list[tuple[str, int]]:
    db.session.expire_all()
    variant = db.session.scalars(select(Variant).where(Variant.platform_id == SMALL)).one()
    return [(lv.location_id, lv.available) for lv in variant.levels]


def stock_went_0_then_50(client) -> bytes:
    """The store's stock went to 0, then to 50; returns the captured "0" delivery's body."""
    factories.shopify_shop()
    seed_from_products_update(client, responses)
    responses.post(ENDPOINT, json=write_answer())
    captured = stock_body(0, T0)
    assert post_webhook(client, "inventory_levels/update", captured, triggered_at=T0).status_code
    restocked = stock_body(50, T0 + timedelta(minutes=5))
    post_webhook(
        client, "inventory_levels/update", restocked, triggered_at=T0 + timedelta(minutes=5)
    )
    assert small_levels() == [(LOCATION, 50)]
    return captured


@responses.activate
def test_a_captured_delivery_replayed_with_a_new_event_id_and_time_changes_nothing(app, client):
    captured = stock_went_0_then_50(client)

    replay = post_webhook(
        client,
        "inventory_levels/update",
        captured,  # the same bytes, so the same valid HMAC
        event_id="attacker-chosen-new-id",
        triggered_at=utcnow(),
    )

    assert replay.status_code == 200 and replay.json["duplicate"] is True
    assert small_levels() == [(LOCATION, 50)]
    stored = db.session.scalars(
        select(WebhookEvent).where(WebhookEvent.event_id == body_digest(captured))
    ).one()
    assert (stored.deliveries, stored.attempts, stored.status) == (2, 1, InboxStatus.PROCESSED)


@responses.activate
def test_a_replay_stored_anew_is_still_ordered_by_its_signed_updated_at(app, client):
    """Even once the original delivery has left the inbox, the replay's `Triggered-At=now` is
    not believed: the signed `updated_at` says it is older than the 50 applied."""
    captured = stock_went_0_then_50(client)
    db.session.execute(delete(WebhookEvent).where(WebhookEvent.event_id == body_digest(captured)))
    db.session.commit()

    replay = post_webhook(
        client, "inventory_levels/update", captured, event_id="new-id", triggered_at=utcnow()
    )

    assert replay.status_code == 200 and replay.json["duplicate"] is False
    assert small_levels() == [(LOCATION, 50)]
    stored = db.session.get(WebhookEvent, replay.json["id"])
    assert stored.triggered_at == T0  # the payload's time, not the header's
    assert "stale inventory" in (stored.attempt_log[-1].error or "")


@responses.activate
def test_a_replay_to_another_shop_changes_nothing_there(app, client):
    """Shopify's HMAC is app-wide, so the shop domain header is not signed either: the same
    body sent as another shop's is the same event, already stored, and touches neither shop."""
    captured = stock_went_0_then_50(client)
    other = factories.shopify_shop(OTHER_SHOP, token="shpat_other")
    calls = len(responses.calls)

    replay = post_webhook(
        client,
        "inventory_levels/update",
        captured,
        shop=OTHER_SHOP,
        event_id="another-new-id",
        triggered_at=utcnow(),
    )

    assert replay.status_code == 200 and replay.json["duplicate"] is True
    assert small_levels() == [(LOCATION, 50)]
    assert len(responses.calls) == calls  # no read, no push for either shop
    other_rows = db.session.scalars(
        select(WebhookEvent).where(WebhookEvent.shop_id == other.id)
    ).all()
    assert other_rows == []
    assert db.session.scalars(select(Variant).where(Variant.shop_id == other.id)).all() == []
    assert db.session.get(Shop, other.id).is_active


@responses.activate
def test_support_pages_show_shopifys_own_event_id(app, client):
    factories.shopify_shop()
    seed_from_products_update(client, responses)
    responses.post(ENDPOINT, json=write_answer())
    response = post_webhook(
        client, "inventory_levels/update", stock_body(3, T0), event_id="shopify-event-77"
    )
    stored = db.session.get(WebhookEvent, response.json["id"])
    assert stored.event_id.startswith("sha256:")
    assert inbox.shown_event_id(stored) == "shopify-event-77"


@responses.activate
def test_within_one_second_of_updated_at_the_header_orders_two_changes(app, client):
    """`updated_at` has whole seconds; Shopify's own Triggered-At, when inside that second,
    orders two changes of the same second (and can move nothing outside it)."""
    factories.shopify_shop()
    seed_from_products_update(client, responses)
    responses.post(ENDPOINT, json=write_answer())
    later, earlier = stock_body(7, T0), stock_body(5, T0)
    post_webhook(
        client, "inventory_levels/update", later, triggered_at=T0 + timedelta(milliseconds=700)
    )
    post_webhook(
        client, "inventory_levels/update", earlier, triggered_at=T0 + timedelta(milliseconds=200)
    )
    assert small_levels() == [(LOCATION, 7)]
