"""Privacy: reports a merchant downloads (never another shop's), and stored order bodies that
name customers emptied after the retention period, never before they are processed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from plugin.extensions import db
from plugin.models import DataRequestReport, InboxStatus, WebhookEvent, utcnow
from plugin.services import bigcommerce_session
from plugin.services.compliance import purge_expired_bodies
from tests import factories
from tests.shopify_install_helpers import session_token


def report_for(shop, email="john@example.com"):
    record = DataRequestReport(
        shop_id=shop.id,
        customer_email=email,
        order_ids=["1001"],
        report={"shop": shop.domain, "customer_email": email, "orders": [], "backorder_lines": []},
    )
    db.session.add(record)
    db.session.commit()
    return record


def test_a_shopify_merchant_downloads_their_report_and_not_another_shops(app, client):
    mine = factories.shopify_shop("mine.myshopify.com")
    theirs = factories.shopify_shop("theirs.myshopify.com")
    record = report_for(theirs)
    own = report_for(mine, "jane@example.com")

    def fetch(report_id, shop="mine.myshopify.com"):
        headers = {"Authorization": f"Bearer {session_token(shop)}"}
        return client.get(f"/shopify/api/data-requests/{report_id}", headers=headers)

    response = fetch(own.id)
    assert response.status_code == 200
    assert response.json["customer_email"] == "jane@example.com"
    assert "attachment" in response.headers["Content-Disposition"]
    assert fetch(record.id).status_code == 404  # another shop's report does not exist here
    support = client.get(
        "/shopify/api/support", headers={"Authorization": f"Bearer {session_token(mine.domain)}"}
    ).json
    assert [r["id"] for r in support["data_requests"]] == [own.id]


def test_a_bigcommerce_user_downloads_their_stores_report_only(app, client):
    mine = factories.bigcommerce_store("mine123", owner=7)
    theirs = factories.bigcommerce_store("their45", owner=8)
    own, other = report_for(mine), report_for(theirs)
    token = bigcommerce_session.issue(app.config["SECRET_KEY"], "mine123", "7")
    url = "/bigcommerce/app/mine123/data-requests/{}.json?token=" + token
    assert client.get(url.format(own.id)).json["shop"] == "mine123"
    assert client.get(url.format(other.id)).status_code == 404
    page = client.get(f"/bigcommerce/app/mine123/support?token={token}").get_data(as_text=True)
    assert f"/bigcommerce/app/mine123/data-requests/{own.id}.json" in page


def stored_order_event(shop, *, days_old: int, status: InboxStatus, order_id="1001"):
    return factories.stored_webhook(
        shop,
        "orders/updated",
        b'{"email": "john@example.com"}',
        received_at=utcnow() - timedelta(days=days_old),
        status=status,
        order_id=order_id,
    ).id


@pytest.mark.parametrize(
    ("days_old", "status", "emptied"),
    [
        (40, InboxStatus.PROCESSED, True),
        (40, InboxStatus.IGNORED, True),
        (10, InboxStatus.PROCESSED, False),  # within the retention period
        (40, InboxStatus.PENDING, False),  # not processed yet: an acknowledged webhook is kept
        (40, InboxStatus.FAILED, False),  # will be retried: kept
        (40, InboxStatus.DEAD_LETTER, True),  # never processed, may still name a customer
        (10, InboxStatus.DEAD_LETTER, False),
    ],
)
def test_order_bodies_are_emptied_after_the_retention_period(app, days_old, status, emptied):
    shop = factories.shopify_shop()
    event_id = stored_order_event(shop, days_old=days_old, status=status)
    purge_expired_bodies(db.session, timedelta(days=30))
    db.session.commit()
    db.session.expire_all()
    event = db.session.get(WebhookEvent, event_id)
    assert (event.body == b"") is emptied
    assert (event.body_purged_at is not None) is emptied
    assert db.session.scalars(select(WebhookEvent)).one().topic == "orders/updated"


def test_a_dead_letter_without_an_order_id_is_emptied_after_the_retention_period(app):
    """A delivery that could never be translated has no order id, and its body may name a
    customer: it is emptied like a processed order's, its headers and error kept for support."""
    shop = factories.shopify_shop()
    old = stored_order_event(shop, days_old=40, status=InboxStatus.DEAD_LETTER, order_id=None)
    recent = stored_order_event(shop, days_old=5, status=InboxStatus.DEAD_LETTER, order_id=None)
    assert purge_expired_bodies(db.session, timedelta(days=30)) == 1
    db.session.commit()
    db.session.expire_all()
    assert db.session.get(WebhookEvent, old).body == b""
    assert db.session.get(WebhookEvent, recent).body == b'{"email": "john@example.com"}'
