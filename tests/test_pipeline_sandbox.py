"""The event pipeline through the real endpoint, inbox and worker code (jobs inline)."""

from datetime import timedelta

from sqlalchemy import func, select

from plugin.extensions import db
from plugin.models import (
    BackorderLine,
    BackorderStatus,
    BadgeTransition,
    InboxStatus,
    SandboxVariant,
    VariantBadge,
    WebhookEvent,
    utcnow,
)
from plugin.services import sandbox_store
from plugin.services.shop_time import shop_today
from tests.helpers import post_sandbox_webhook


def seed(variants=(("Small", "S", 2, "continue"),)):
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    product, hooks = sandbox_store.create_product(db.session, shop, "Tee", list(variants))
    db.session.commit()
    assert sandbox_store.deliver(shop, hooks) == [200]
    return shop, product


def badge_of(client, variant_id):
    response = client.get(f"/storefront/v1/badges?shop=demo.sandbox.local&variants={variant_id}")
    assert response.status_code == 200
    return response.json["variants"][str(variant_id)]


def set_stock(shop, variant_id, inventory, policy=None):
    hooks = sandbox_store.set_inventory(db.session, shop, variant_id, inventory, policy)
    db.session.commit()
    return sandbox_store.deliver(shop, hooks)


def test_inventory_to_zero_with_selling_past_zero_shows_backorder_with_eta(client):
    shop, product = seed()
    vid = product.variants[0].id
    assert badge_of(client, vid)["state"] == "in_stock"

    set_stock(shop, vid, 0)
    badge = badge_of(client, vid)
    expected = shop_today("UTC") + timedelta(days=14)
    assert badge["state"] == "backorder"
    assert badge["eta"] == expected.isoformat()
    assert badge["label"] == f"Backorder, ships by {badge['eta_text']}"
    # The store got the badge pushed too.
    db.session.expire_all()
    assert db.session.get(SandboxVariant, vid).badge_state == "backorder"


def test_orders_on_backorder_record_lines_until_the_limit_then_out_of_stock(client):
    shop, product = seed()
    vid = product.variants[0].id
    mirror_variant = db.session.get(VariantBadge, 1).variant
    mirror_variant.backorder_limit = 3
    db.session.commit()
    set_stock(shop, vid, 0)

    for quantity in (1, 2):
        _order, hooks = sandbox_store.place_order(db.session, shop, vid, quantity, "a@example.com")
        db.session.commit()
        assert sandbox_store.deliver(shop, hooks) == [200, 200]

    lines = db.session.scalars(select(BackorderLine).order_by(BackorderLine.id)).all()
    assert [(ln.quantity, ln.status) for ln in lines] == [
        (1, BackorderStatus.OPEN),
        (2, BackorderStatus.OPEN),
    ]
    assert badge_of(client, vid)["state"] == "out_of_stock"
    # The app told the store to stop selling, so checkout now refuses.
    db.session.expire_all()
    assert db.session.get(SandboxVariant, vid).app_policy == "deny"

    set_stock(shop, vid, 10)
    assert badge_of(client, vid)["state"] == "in_stock"
    db.session.expire_all()
    assert {ln.status for ln in db.session.scalars(select(BackorderLine))} == {
        BackorderStatus.ALLOCATED
    }


def test_duplicate_delivery_changes_nothing(client):
    shop, product = seed()
    vid = product.variants[0].id
    payload = {"variant_id": vid, "location_id": "default", "available": 0}
    first = post_sandbox_webhook(client, "inventory_levels/update", payload, event_id="evt-1")
    assert first.status_code == 200 and first.json["duplicate"] is False
    transitions = db.session.scalar(select(func.count()).select_from(BadgeTransition))

    again = post_sandbox_webhook(client, "inventory_levels/update", payload, event_id="evt-1")
    assert again.status_code == 200 and again.json["duplicate"] is True
    event = db.session.scalars(select(WebhookEvent).where(WebhookEvent.event_id == "evt-1")).one()
    db.session.refresh(event)
    assert event.deliveries == 2
    assert event.attempts == 1
    assert db.session.scalar(select(func.count()).select_from(BadgeTransition)) == transitions


def test_older_event_arriving_late_does_not_override_newer_stock(client):
    shop, product = seed()
    vid = product.variants[0].id
    now = utcnow()
    post_sandbox_webhook(
        client,
        "inventory_levels/update",
        {"variant_id": vid, "location_id": "default", "available": 0},
        triggered_at=now + timedelta(seconds=5),
    )
    assert badge_of(client, vid)["state"] == "backorder"
    late = post_sandbox_webhook(
        client,
        "inventory_levels/update",
        {"variant_id": vid, "location_id": "default", "available": 7},
        triggered_at=now + timedelta(seconds=1),
    )
    assert late.status_code == 200
    assert badge_of(client, vid)["state"] == "backorder"
    event = db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id.desc())).first()
    assert event.status == InboxStatus.PROCESSED


def test_tampered_signature_is_refused_and_nothing_is_stored(client):
    from flask import current_app

    from webhooks import sandbox as sandbox_webhooks

    seed()
    body, headers = sandbox_webhooks.build_delivery(
        current_app.extensions["settings"].secret_key, "demo.sandbox.local", "app/uninstalled", {}
    )
    count = db.session.scalar(select(func.count()).select_from(WebhookEvent))
    response = client.post("/webhooks/sandbox", data=body + b" ", headers=headers)
    assert response.status_code == 401
    assert response.json == {"error": "invalid webhook signature"}
    assert db.session.scalar(select(func.count()).select_from(WebhookEvent)) == count


def test_unknown_platform_is_404_json(client):
    response = client.post("/webhooks/nowhere", data=b"{}")
    assert response.status_code == 404
    assert "unknown platform" in response.json["error"]


def test_a_failing_event_is_kept_with_its_error_and_replayable(app, client, monkeypatch):
    shop, product = seed()
    vid = product.variants[0].id
    app.config["RAISE_INLINE_JOB_ERRORS"] = False
    from plugin.services import pipeline

    def boom(*_a, **_k):
        raise RuntimeError("database hiccup")

    monkeypatch.setattr(pipeline.catalog, "set_level", boom)
    response = post_sandbox_webhook(
        client, "inventory_levels/update", {"variant_id": vid, "available": 0}, event_id="e-fail"
    )
    assert response.status_code == 200  # acknowledged: it is stored
    event = db.session.scalars(select(WebhookEvent).where(WebhookEvent.event_id == "e-fail")).one()
    assert event.status == InboxStatus.FAILED
    assert "database hiccup" in event.last_error
    assert [a.outcome for a in event.attempt_log] == ["failed"]

    monkeypatch.undo()
    result = app.test_cli_runner().invoke(args=["webhooks", "retry"])
    assert "queued 1 webhook(s)" in result.output
    db.session.expire_all()
    assert event.status == InboxStatus.PROCESSED
    assert badge_of(client, vid)["state"] == "backorder"


def test_uninstall_stops_the_shop_and_its_badges_disappear(client):
    shop, product = seed()
    vid = product.variants[0].id
    post_sandbox_webhook(client, "app/uninstalled", {})
    response = client.get(f"/storefront/v1/badges?shop=demo.sandbox.local&variants={vid}")
    assert response.status_code == 404
    db.session.expire_all()
    assert not shop.is_active
    assert shop.access_token_encrypted is None


def test_sandbox_pages_add_products_and_variants_and_reject_bad_input(client):
    created = client.post(
        "/sandbox/products",
        data={"title": "Cap", "variants": "One size, CAP-1, 0, continue"},
        follow_redirects=True,
    )
    assert "Added Cap." in created.get_data(as_text=True)
    added = client.post(
        "/sandbox/products/1/variants",
        data={"title": "Kids", "sku": "CAP-K", "inventory": "4", "policy": "deny"},
        follow_redirects=True,
    )
    assert "Added variant Kids." in added.get_data(as_text=True)
    body = client.get("/storefront/v1/badges?shop=demo.sandbox.local&product=1").json["variants"]
    assert {v["state"] for v in body.values()} == {"backorder", "in_stock"}

    refused = client.post(
        "/sandbox/products",
        data={"title": "Bad", "variants": "x, y, lots, deny"},
        follow_redirects=True,
    )
    assert "Line 1: stock must be a whole number." in refused.get_data(as_text=True)
    too_many = client.post(
        "/sandbox/orders",
        data={"variant_id": "2", "quantity": "9", "email": "a@example.com"},
        follow_redirects=True,
    )
    assert "Only 4 of Kids left." in too_many.get_data(as_text=True)


def test_a_thin_order_payload_is_completed_through_the_connector(client):
    shop, product = seed()
    vid = product.variants[0].id
    set_stock(shop, vid, 0)
    order, _hooks = sandbox_store.place_order(db.session, shop, vid, 2, "thin@example.com")
    db.session.commit()
    response = post_sandbox_webhook(client, "orders/create", {"id": order.id})
    assert response.status_code == 200
    line = db.session.scalars(select(BackorderLine)).one()
    assert (line.order.platform_id, line.quantity, line.order.customer_email) == (
        str(order.id),
        2,
        "thin@example.com",
    )


def test_an_event_for_an_unmirrored_product_gives_every_variant_a_badge(client):
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    # The store's products/update never arrived: the app first hears of this product through
    # a stock event for one of its variants, and must mirror (and badge) all of them.
    product, _hooks = sandbox_store.create_product(
        db.session, shop, "Scarf", [("Red", "R", 0, "continue"), ("Blue", "B", 6, "deny")]
    )
    db.session.commit()
    red, blue = product.variants
    response = post_sandbox_webhook(
        client, "inventory_levels/update", {"variant_id": red.id, "available": 0}
    )
    assert response.status_code == 200
    body = client.get(f"/storefront/v1/badges?shop=demo.sandbox.local&product={product.id}").json
    assert body["variants"][str(red.id)]["state"] == "backorder"
    assert body["variants"][str(blue.id)]["state"] == "in_stock"
