"""Poison deliveries and secrets in logs (issue 13, defects 5b and 6).

- A signed body that is not JSON, or not of its topic's shape, is a 400 at the door: nothing is
  stored, so nothing fails through RQ's retries and the sweeper's.
- A stored delivery that can never be translated goes to the visible dead letter state at its
  first attempt, is not retried, and shows on the support pages.
- A failed inbox insert never logs its parameters (the body names a customer).
"""

from __future__ import annotations

import json
import logging
import uuid

import pytest
from sqlalchemy import func, select

from plugin.extensions import db
from plugin.models import InboxStatus, WebhookEvent
from plugin.services import inbox, support
from tests import factories
from tests.shopify_webhook_helpers import post_webhook
from tests.test_hostile_input import post

CUSTOMER = "ada.lovelace@example.com"


def stored() -> int:
    return db.session.scalar(select(func.count()).select_from(WebhookEvent))


@pytest.mark.parametrize("platform", ["shopify", "sandbox", "bigcommerce"])
@pytest.mark.parametrize(
    "body",
    [b"not json at all", b'"a string"', b"[1, 2]", b"\xff\xfe"],
    ids=["text", "json-string", "json-list", "not-utf8"],
)
def test_a_signed_body_that_is_not_a_json_object_is_refused_at_the_door(
    app, client, platform, body
):
    factories.shopify_shop()
    factories.shop()
    factories.bigcommerce_store()
    if platform == "bigcommerce" and body == b"\xff\xfe":
        pytest.skip("BigCommerce's signature is over text: the signer cannot sign these bytes")
    response = post(client, platform, body)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "JSON" in response.json["error"]
    assert stored() == 0


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("inventory_levels/update", {"inventory_item_id": 1, "location_id": 2, "available": "x"}),
        ("inventory_levels/update", {"location_id": 2, "available": 1}),
        ("products/update", {"id": 1, "variants": "not a list"}),
        ("orders/create", {"id": {"nested": 1}, "created_at": "2026-11-30T09:00:00Z"}),
        ("orders/create", {"id": 1, "line_items": []}),  # no created_at
        ("refunds/create", {"id": 5}),
        ("customers/redact", {"customer": {"email": CUSTOMER}, "orders_to_redact": [[1]]}),
    ],
)
def test_a_signed_shopify_body_of_the_wrong_shape_is_refused(app, client, topic, payload):
    factories.shopify_shop()
    response = post_webhook(client, topic, payload)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["error"].startswith(f"{topic} payload:")
    assert CUSTOMER not in response.get_data(as_text=True)
    assert stored() == 0


def test_a_stored_delivery_that_can_never_be_processed_is_a_dead_letter(app, client):
    """Stored before the door checked it (or by a translation that depends on the store): its
    first attempt moves it to the dead letter state, where no retry and no redelivery touch it,
    and the support pages count and show it."""
    from plugin.jobs import process_webhook

    shop = factories.shopify_shop()
    poison = factories.stored_webhook(
        shop,
        "inventory_levels/update",
        json.dumps({"inventory_item_id": 1, "location_id": 2, "available": "x"}).encode(),
        event_id=f"sha256:{uuid.uuid4().hex}",
        headers={"X-Shopify-Event-Id": "evt-poison"},
    )

    process_webhook(poison.id)  # does not raise: RQ has nothing to retry
    db.session.expire_all()
    event = db.session.get(WebhookEvent, poison.id)
    assert event.status == InboxStatus.DEAD_LETTER
    assert event.attempts == 1
    assert event.last_error.startswith("cannot be processed: ValueError")
    assert [a.outcome for a in event.attempt_log] == ["dead_letter"]

    process_webhook(poison.id)  # a retry, or the sweeper, changes nothing
    db.session.expire_all()
    assert db.session.get(WebhookEvent, poison.id).attempts == 1
    assert not inbox.Recorded(poison.id, InboxStatus.DEAD_LETTER, False).needs_processing

    health = support.inbox_health(db.session, shop)
    assert health["counts"]["dead_letter"] == 1
    assert [e["topic"] for e in health["failing"]] == ["inventory_levels/update"]
    assert "cannot be processed" in health["failing"][0]["error"]


def _received_left_empty(real):
    """The inbox INSERT sent with its receive time ($1) left NULL: it breaks a NOT NULL
    constraint, and PostgreSQL's message quotes the failing row."""

    def execute(connection, name, sql, params):
        return real(connection, name, sql, [None, *params[1:]])

    return execute


def test_a_failed_inbox_insert_logs_no_body(app, client, caplog, monkeypatch):
    """The insert fails (here: a NOT NULL column left empty); the error logged names the
    error and the table, never the values: neither the parameters nor PostgreSQL's "Failing
    row contains (...)", which quotes the body (hex-encoded) and so a customer's email."""
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    monkeypatch.setattr(inbox, "execute_prepared", _received_left_empty(inbox.execute_prepared))
    body = {"id": 1, "email": CUSTOMER, "customer": {"email": CUSTOMER}}
    with caplog.at_level(logging.ERROR):
        response = post_webhook(client, "customers/data_request", body)
    assert response.status_code == 500
    logged = caplog.text
    assert "IntegrityError" in logged and "webhook_events" in logged
    assert "not-null constraint" in logged and "values are not logged" in logged
    assert CUSTOMER not in logged and CUSTOMER.encode().hex() not in logged
    assert "Failing row" not in logged
    assert stored() == 0


def test_dead_letters_are_taken_back_only_when_asked(app, client, monkeypatch):
    """After a fix ships, `flask webhooks retry --dead-letters` puts them through again; a plain
    retry leaves them aside."""
    from plugin.jobs import process_webhook
    from webhooks import shopify

    shop = factories.shopify_shop()
    poison = factories.stored_webhook(
        shop, "app/uninstalled", b"{}", event_id=f"sha256:{uuid.uuid4().hex}"
    )
    original = shopify.ShopifyWebhooks.to_events

    def broken(self, delivery, store):
        raise KeyError("a translation bug")

    monkeypatch.setattr(shopify.ShopifyWebhooks, "to_events", broken)
    process_webhook(poison.id)
    db.session.expire_all()
    assert db.session.get(WebhookEvent, poison.id).status == InboxStatus.DEAD_LETTER

    monkeypatch.setattr(shopify.ShopifyWebhooks, "to_events", original)  # the fix
    runner = app.test_cli_runner()
    assert "queued 0 webhook(s)" in runner.invoke(args=["webhooks", "retry"]).output
    db.session.expire_all()
    assert db.session.get(WebhookEvent, poison.id).status == InboxStatus.DEAD_LETTER

    output = runner.invoke(args=["webhooks", "retry", "--dead-letters"]).output
    assert "took back 1 dead letter(s)" in output
    db.session.expire_all()
    assert db.session.get(WebhookEvent, poison.id).status == InboxStatus.PROCESSED
    db.session.refresh(shop)
    assert not shop.is_active  # the uninstall it carried took effect


def test_a_value_too_long_for_the_store_is_a_dead_letter_at_its_first_attempt(app, client):
    """A signed, well-formed delivery whose product title is longer than the app stores (a
    data error: it fails the same way every time) is not retried by RQ and the sweeper: it goes
    to the dead letter state at once, with the database's own message and no SQL, and support
    sees it. Other deliveries of the same shop are processed."""
    from plugin.jobs import process_webhook
    from plugin.models import Product
    from plugin.services import sandbox_store
    from tests.helpers import post_sandbox_webhook

    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    long_title = "T" * 300
    product = {
        "id": 9001,
        "title": long_title,
        "variants": [{"id": 9002, "sku": "S", "title": "M", "inventory_quantity": 2}],
    }
    fine = {
        **product,
        "id": 9101,
        "title": "Fine",
        "variants": [{**product["variants"][0], "id": 9102}],
    }
    for payload in (product, fine):  # processed inline by the shop's drain
        response = post_sandbox_webhook(client, "products/update", payload, shop_domain=shop.domain)
        assert response.status_code == 200

    db.session.expire_all()
    poison = db.session.scalars(
        select(WebhookEvent).where(WebhookEvent.body.contains(long_title.encode()))
    ).one()
    assert poison.status == InboxStatus.DEAD_LETTER and poison.attempts == 1
    assert poison.last_error.startswith("cannot be processed: DataError")
    assert "value too long" in poison.last_error and "INSERT" not in poison.last_error
    assert [a.outcome for a in poison.attempt_log] == ["dead_letter"]
    assert db.session.scalar(select(Product.title).where(Product.platform_id == "9101")) == "Fine"

    assert process_webhook(poison.id).startswith(f"event {poison.id}")  # a retry: nothing to do
    db.session.expire_all()
    assert db.session.get(WebhookEvent, poison.id).attempts == 1
    health = support.inbox_health(db.session, shop)
    assert health["counts"]["dead_letter"] == 1
    assert "value too long" in health["failing"][0]["error"]


def test_a_data_error_met_by_a_retry_is_a_dead_letter_and_not_raised(app):
    """process_webhook (the single-event retry): a data error records the dead letter and
    returns, so RQ has nothing to retry."""
    from plugin.jobs import process_webhook
    from plugin.services import sandbox_store

    shop = sandbox_store.ensure_shop(db.session)
    body = json.dumps(
        {"id": 7, "title": "x" * 400, "variants": [{"id": 8, "inventory_quantity": 1}]}
    ).encode()
    event = factories.stored_webhook(shop, "products/update", body)
    note = process_webhook(event.id)
    assert "dead letter" in note
    db.session.expire_all()
    stored_event = db.session.get(WebhookEvent, event.id)
    assert stored_event.status == InboxStatus.DEAD_LETTER
    assert stored_event.processed_at is not None
