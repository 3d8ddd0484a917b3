"""Notify me and privacy requests: a customer's data request lists their sign-ups with the
consent records kept as evidence; a customer redact deletes them; a shop redact removes every
sign-up and restock of the shop, and nothing of another shop."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from domain import events as ev
from plugin.extensions import db
from plugin.models import (
    DataRequestReport,
    NotifySubscription,
    OutboxMail,
    Restock,
    Shop,
    utcnow,
)
from plugin.services import compliance
from tests import factories
from tests.shopify_webhook_helpers import SHOP, fixture_bytes, post_webhook

NOW = utcnow().replace(microsecond=0)


def shop_with_sign_ups(domain: str = SHOP) -> tuple[Shop, NotifySubscription]:
    shop = factories.shopify_shop(domain)
    (small, large) = factories.product(
        shop,
        "500",
        "Rain jacket",
        variants=[
            {"platform_id": "501", "title": "Small", "sku": "RJ-S"},
            {"platform_id": "502", "title": "Large", "sku": "RJ-L"},
        ],
    ).variants
    john = factories.notify_subscription(
        small,
        "john@example.com",
        created_at=NOW - timedelta(days=3),
        consent_text="I agree to receive one email from Cool Shop when this is back.",
        consent_version="a1b2c3d4e5f6",
        form="shopify_block",
        page_url="https://cool.example/products/rain-jacket?variant=501",
        ip_truncated="198.51.100.0/24",
        user_agent="Mozilla/5.0 (iPhone)",
    )
    factories.notify_subscription(large, "john@example.com", status="alerted")
    factories.notify_subscription(small, "jane@example.com")
    return shop, john


def mail_about(sign_up: NotifySubscription, recipient: str) -> OutboxMail:
    mail = OutboxMail(
        shop_id=sign_up.shop_id,
        kind="back_in_stock",
        recipient=recipient,
        subject="Back in stock",
        text_body="It is back.",
        html_body="<p>It is back.</p>",
        idempotency_key=f"test:{sign_up.id}:{recipient}",
        notify_subscription_id=sign_up.id,
    )
    db.session.add(mail)
    db.session.commit()
    return mail


def compliance_body(name: str) -> bytes:
    return fixture_bytes(name).replace(b"{shop}.myshopify.com", SHOP.encode())


def test_a_data_request_lists_the_customers_sign_ups_with_their_consent(app, client):
    shop_with_sign_ups()
    shop_with_sign_ups("other-shop.myshopify.com")
    response = post_webhook(
        client, "customers/data_request", compliance_body("customers-data_request.json")
    )
    assert response.status_code == 200
    report = db.session.scalars(select(DataRequestReport)).one().report
    first, second = report["notify_subscriptions"]
    assert first == {
        "email": "john@example.com",
        "variant_id": "501",
        "product": "Rain jacket",
        "variant": "Small",
        "sku": "RJ-S",
        "status": "active",
        "locale": "en",
        "signed_up_at": (NOW - timedelta(days=3)).isoformat(),
        "confirmed_at": (NOW - timedelta(days=3)).isoformat(),
        "alerted_at": None,
        "unsubscribed_at": None,
        "consent": {
            "text": "I agree to receive one email from Cool Shop when this is back.",
            "version": "a1b2c3d4e5f6",
            "form": "shopify_block",
            "page": "https://cool.example/products/rain-jacket?variant=501",
            "at": (NOW - timedelta(days=3)).isoformat(),
            "ip_truncated": "198.51.100.0/24",
            "user_agent": "Mozilla/5.0 (iPhone)",
            "double_opt_in": False,
        },
    }
    assert (second["variant"], second["status"]) == ("Large", "alerted")
    # Only this shop's sign-ups (john signed up at the other shop too), only this customer's.
    assert {s["email"] for s in report["notify_subscriptions"]} == {"john@example.com"}


def test_a_data_request_finds_the_address_whatever_its_case(app):
    shop, _ = shop_with_sign_ups()
    report = compliance.customer_data(db.session, shop, "John@Example.COM", ())
    assert len(report["notify_subscriptions"]) == 2
    assert compliance.customer_data(db.session, shop, None, ("1",))["notify_subscriptions"] == []


def test_a_customer_redact_deletes_their_sign_ups_and_the_mails_about_them(app):
    shop, john = shop_with_sign_ups()
    mail_about(john, "john@example.com")
    # A mail linked to john's sign-up but sent elsewhere stays, without the link.
    other = mail_about(john, "copy@cool.example")
    outcome = compliance.handle(
        db.session,
        shop,
        ev.CustomerRedact(customer_email="John@Example.com", order_ids=(), occurred_at=NOW),
        current_event_id=0,
    )
    db.session.commit()
    assert "2 notify-me sign-up(s) deleted" in outcome and "1 mail(s) deleted" in outcome
    db.session.expire_all()
    left = db.session.scalars(select(NotifySubscription.email)).all()
    assert left == ["jane@example.com"]
    kept = db.session.get(OutboxMail, other.id)
    assert kept is not None and kept.notify_subscription_id is None


def test_customer_redact_through_the_shopify_webhook(app, client):
    shop_with_sign_ups()
    response = post_webhook(client, "customers/redact", compliance_body("customers-redact.json"))
    assert response.status_code == 200
    db.session.expire_all()
    emails = db.session.scalars(select(NotifySubscription.email)).all()
    assert "john@example.com" not in emails and emails == ["jane@example.com"]


def test_a_shop_redact_removes_every_sign_up_and_restock_of_that_shop_only(app, client):
    shop, john = shop_with_sign_ups()
    other_shop, theirs = shop_with_sign_ups("other-shop.myshopify.com")
    for owner, sign_up in ((shop, john), (other_shop, theirs)):
        db.session.add(Restock(shop_id=owner.id, variant_id=sign_up.variant_id, units_at_start=3))
    db.session.commit()
    mail_about(john, "john@example.com")

    response = post_webhook(client, "shop/redact", compliance_body("shop-redact.json"))
    assert response.status_code == 200
    db.session.expire_all()
    count = lambda model: db.session.scalar(select(func.count()).select_from(model))  # noqa: E731
    assert db.session.scalars(select(Shop.domain)).all() == ["other-shop.myshopify.com"]
    assert count(NotifySubscription) == 3  # the other shop's
    assert count(Restock) == 1
    assert count(OutboxMail) == 0
    assert {s.shop_id for s in db.session.scalars(select(NotifySubscription))} == {other_shop.id}
