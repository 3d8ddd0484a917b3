"""The Overview says plainly what the app is doing for a store and what needs the merchant:
re-authorisation, refused registration, failing webhooks, lines nobody can be told about, fixed
ETAs in the past and bounced mails, most urgent first, and nothing when all is well."""

from __future__ import annotations

from datetime import timedelta

from plugin.extensions import db
from plugin.models import (
    InboxStatus,
    InstallStatus,
    MailStatus,
    OutboxMail,
    Platform,
    WebhookEvent,
    utcnow,
)
from plugin.services.overview import overview
from tests import factories


def catalogue(shop):
    return factories.product(
        shop,
        "p1",
        "Linen shirt",
        [
            {"platform_id": "v1", "title": "S", "badge": ("in_stock", "In stock", None)},
            {"platform_id": "v2", "title": "M", "badge": ("backorder", "Backorder", None)},
            {"platform_id": "v3", "title": "L", "badge": ("out_of_stock", "Out", None)},
        ],
    ).variants


def test_a_healthy_store_reads_as_one_sentence_and_needs_nothing(app):
    shop = factories.shop()
    variants = catalogue(shop)
    factories.backorder_line(variants[1], "1001", quantity=2, email="ada@example.com")
    view = overview(db.session, shop)
    assert view.summary() == (
        "Badges on 3 variants: 1 in stock, 1 on backorder, 1 out of stock; "
        "2 units owed to customers on 1 backordered line."
    )
    assert view.attention == []


def test_what_needs_the_merchant_is_listed_most_urgent_first(app):
    shop = factories.shop()
    variants = catalogue(shop)
    shop.status = InstallStatus.NEEDS_REAUTH
    shop.reauth_reason = "the access token was revoked"
    variants[2].eta_override = factories.today_plus(-3)
    db.session.add(
        WebhookEvent(
            shop_id=shop.id,
            platform=Platform.SANDBOX,
            shop_domain=shop.domain,
            event_id="e1",
            topic="inventory_levels/update",
            body=b"{}",
            status=InboxStatus.FAILED,
        )
    )
    db.session.add(
        OutboxMail(
            shop_id=shop.id,
            kind="ships_soon",
            recipient="gone@example.com",
            subject="s",
            text_body="t",
            html_body="h",
            idempotency_key="k1",
            status=MailStatus.BOUNCED,
        )
    )
    db.session.commit()
    factories.backorder_line(variants[1], "1002", email=None)  # a guest with no address

    items = overview(db.session, shop).attention
    assert [item.tone for item in items] == [
        "critical",
        "critical",
        "warning",
        "warning",
        "warning",
    ]
    titles = " | ".join(item.title for item in items)
    assert "stopped accepting the app's access: the access token was revoked" in titles
    assert "1 store update could not be processed" in titles
    assert "1 backordered line has no customer email" in titles
    assert "1 variant has a fixed ETA in the past" in titles
    assert "1 customer email bounced" in titles
    assert all(item.action for item in items)


def test_one_shop_never_sees_anothers_figures(app):
    shop = factories.shop()
    other = factories.shop("other.sandbox.local")
    variants = catalogue(other)
    factories.backorder_line(variants[1], "2001", email=None)
    variants[0].eta_override = factories.today_plus(-1)
    db.session.commit()
    view = overview(db.session, shop)
    assert view.variants == 0 and view.open_lines == 0 and view.attention == []
    assert view.summary().startswith("No variants synced yet")


def test_mails_sent_count_the_last_seven_days(app):
    shop = factories.shop()
    for n, days in enumerate((1, 6, 8)):
        db.session.add(
            OutboxMail(
                shop_id=shop.id,
                kind="ships_soon",
                recipient=f"c{n}@example.com",
                subject="s",
                text_body="t",
                html_body="h",
                idempotency_key=f"k{n}",
                status=MailStatus.SENT,
                sent_at=utcnow() - timedelta(days=days),
            )
        )
    db.session.commit()
    assert overview(db.session, shop).mails_sent == 2


def test_each_shell_shows_the_overview_only_to_its_own_store(app, client):
    from tests.shopify_install_helpers import session_token

    shop = factories.shop()
    catalogue(shop)
    page = client.get("/sandbox/overview").get_data(as_text=True)
    assert "Badges on 3 variants: 1 in stock, 1 on backorder, 1 out of stock" in page
    assert "Nothing needs you right now." in page

    shopify = factories.shopify_shop("cool-shop.myshopify.com")
    shopify.status = InstallStatus.NEEDS_REAUTH
    db.session.commit()
    answer = client.get(
        "/shopify/api/overview",
        headers={"Authorization": f"Bearer {session_token('cool-shop.myshopify.com')}"},
    )
    assert answer.status_code == 200
    assert answer.json["summary"].startswith("No variants synced yet")  # not the sandbox's
    assert answer.json["attention"][0]["tone"] == "critical"
    assert client.get("/shopify/api/overview").status_code == 401


def test_updates_set_aside_as_unreadable_are_told_apart_from_ones_being_retried(app):
    """A dead letter is never retried: the merchant is not told the app retries it."""
    shop = factories.shop()
    catalogue(shop)
    for number, status in enumerate([InboxStatus.DEAD_LETTER, InboxStatus.DEAD_LETTER]):
        db.session.add(
            WebhookEvent(
                shop_id=shop.id,
                platform=Platform.SANDBOX,
                shop_domain=shop.domain,
                event_id=f"dead-{number}",
                topic="inventory_levels/update",
                body=b"{}",
                status=status,
            )
        )
    db.session.commit()
    items = overview(db.session, shop).attention
    assert [(item.tone, item.title) for item in items] == [
        ("critical", "2 store updates could not be read and were set aside.")
    ]
    assert "not retried" in items[0].action
