"""Fair back-in-stock alerts through a real SMTP server (aiosmtpd): 100 shoppers wait for a
variant, 5 units come back; at 1 alert per unit the first 5 in sign-up order hear at once, the
next 5 only after the batch interval, and a sell-out stops the rest. A redelivered restock
webhook, a retried job and the clock's sweep alert nobody twice, and a one-click unsubscribe is
honoured by the next batch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import time_machine
from flask import current_app
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from plugin.extensions import db
from plugin.jobs import alert_restock, queue_mails, send_due_restock_alerts
from plugin.models import (
    NotifySubscription,
    Restock,
    RestockStatus,
    SubscriptionStatus,
)
from plugin.services import notify_me, sandbox_store
from plugin.services.fair_alerts import batch_size, next_batch
from plugin.services.notify_texts import consent_version, form_texts
from tests import factories, waiting
from webhooks import sandbox as sandbox_webhooks

PAGE = "https://maison-lune.example/products/linen-shirt"


def deliver_again(shop, hooks) -> list[tuple[bytes, dict]]:
    """Deliver webhooks and keep exactly what was sent, so it can be redelivered byte for byte."""
    settings = current_app.extensions["settings"]
    client = current_app.test_client()
    sent = []
    for hook in hooks:
        body, headers = sandbox_webhooks.build_delivery(
            settings.secret_key, shop.domain, hook.topic, hook.payload
        )
        assert client.post("/webhooks/sandbox", data=body, headers=headers).status_code == 200
        sent.append((body, headers))
    return sent


def waiting_shop():
    shop = factories.shop()
    shop.name = "Maison Lune"
    db.session.commit()
    product = factories.sandbox_product(shop, "Linen shirt", [("M / Blue", "LIN-M", 0, "deny")])
    sandbox_variant = product.variants[0]
    variant = sandbox_store_variant(shop, sandbox_variant)
    return shop, sandbox_variant.id, variant


def sandbox_store_variant(shop, sandbox_variant):
    from plugin.models import Variant

    return db.session.scalar(
        select(Variant).where(
            Variant.shop_id == shop.id, Variant.platform_id == str(sandbox_variant.id)
        )
    )


def sign_up_many(shop, variant, count: int) -> list[str]:
    version = consent_version(form_texts(shop.settings, "en", shop.name)["consent"])
    emails, mail_ids = [], []
    for n in range(count):
        email = f"shopper{n:03d}@example.com"
        result = notify_me.subscribe(
            db.session,
            shop,
            notify_me.SignUp(
                variant=variant.platform_id,
                email=email,
                locale="en",
                consent_version=version,
                form="sandbox",
                page_url=PAGE,
                ip="203.0.113.9",
            ),
            app_url="https://app.test",
        )
        emails.append(email)
        mail_ids.append(result.mail_id)
    db.session.commit()
    queue_mails(mail_ids)  # as the sign-up endpoint does after its commit
    return emails


def recipients(smtp) -> list[str]:
    return [message["To"] for message in smtp.mailbox.messages]


def fresh():
    db.session.expire_all()
    db.session.rollback()


def test_a_restock_of_5_alerts_5_per_batch_in_order_and_a_sell_out_stops_the_rest(smtp_app, smtp):
    shop, sandbox_variant_id, variant = waiting_shop()
    emails = sign_up_many(shop, variant, 100)
    at = datetime.now(UTC) + timedelta(hours=1)  # the store's clock only moves forward

    with time_machine.travel(at, tick=False):
        hooks = sandbox_store.receive_stock(db.session, shop, sandbox_variant_id, 5)
        db.session.commit()
        sent = deliver_again(shop, hooks)
    waiting.wait_until(lambda: len(smtp.mailbox.messages) >= 5, timeout=30, what="first batch")
    assert recipients(smtp) == emails[:5]

    first = smtp.mailbox.messages[0]
    fresh()
    sub = db.session.scalar(select(NotifySubscription).where(NotifySubscription.email == emails[0]))
    unsubscribe = f"https://app.test/notify/unsubscribe/{sub.token}"
    assert first["List-Unsubscribe"] == f"<{unsubscribe}>"
    assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "back-in-stock alerts" in first["List-Id"]
    assert first["Subject"] == "Linen shirt (M / Blue) is back in stock"
    text = first.get_body(("plain",)).get_content()
    assert f"{PAGE}?variant={variant.platform_id}" in text  # straight to the variant
    assert "Unsubscribe: " + unsubscribe in text
    assert "only 5 available" not in text  # the store did not allow showing stock

    # Redelivered byte for byte, a fresh event with the same stock, a retried job, the
    # clock's sweep: all within the interval, and nobody hears twice.
    client = current_app.test_client()
    with time_machine.travel(at + timedelta(minutes=5), tick=False):
        for body, headers in sent:
            assert client.post("/webhooks/sandbox", data=body, headers=headers).status_code == 200
        same_stock = sandbox_store.get_variant(db.session, shop, sandbox_variant_id)
        deliver_again(
            shop,
            [
                sandbox_store.Webhook(
                    "inventory_levels/update", sandbox_store.inventory_payload(same_stock)
                )
            ],
        )
        restock = db.session.scalars(select(Restock)).one()
        alert_restock(restock.id)
        send_due_restock_alerts()
    assert len(smtp.mailbox.messages) == 5

    # The interval passes with 5 still on the shelf: the next 5 in sign-up order.
    with time_machine.travel(at + timedelta(minutes=15, seconds=1), tick=False):
        send_due_restock_alerts()
    waiting.wait_until(lambda: len(smtp.mailbox.messages) >= 10, timeout=30, what="batch 2")
    assert recipients(smtp) == emails[:10]

    # They buy all 5: sold out again. The next batch time comes, and nobody else hears.
    with time_machine.travel(at + timedelta(minutes=20), tick=False):
        for n in range(5):
            _, order_hooks = factories.sandbox_order(shop, sandbox_variant_id, 1, emails[n])
            assert sandbox_store.deliver(shop, order_hooks) == [200] * len(order_hooks)
    with time_machine.travel(at + timedelta(minutes=31), tick=False):
        send_due_restock_alerts()
    fresh()
    assert len(smtp.mailbox.messages) == 10
    restock = db.session.scalars(select(Restock)).one()
    assert restock.status == RestockStatus.SOLD_OUT
    assert (restock.batches, restock.alerted) == (2, 10)
    statuses = dict(
        db.session.execute(select(NotifySubscription.email, NotifySubscription.status)).all()
    )
    assert [statuses[e] for e in emails[:10]] == [SubscriptionStatus.ALERTED] * 10
    assert {statuses[e] for e in emails[10:]} == {SubscriptionStatus.ACTIVE}

    # Shopper 11 unsubscribes with one click (as Gmail does); the next restock skips them.
    eleventh = db.session.scalar(
        select(NotifySubscription).where(NotifySubscription.email == emails[10])
    )
    response = client.post(
        f"/notify/unsubscribe/{eleventh.token}",
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    with time_machine.travel(at + timedelta(days=1), tick=False):
        hooks = sandbox_store.receive_stock(db.session, shop, sandbox_variant_id, 2)
        db.session.commit()
        assert sandbox_store.deliver(shop, hooks) == [200]
    waiting.wait_until(lambda: len(smtp.mailbox.messages) >= 12, timeout=30, what="restock 2")
    assert recipients(smtp)[10:] == [emails[11], emails[12]]
    assert len(set(recipients(smtp))) == len(recipients(smtp))


def test_units_left_are_shown_when_the_store_allows_it(smtp_app, smtp):
    shop, sandbox_variant_id, variant = waiting_shop()
    shop.settings.notify_show_stock = True
    shop.settings.notify_rate_per_unit = 2
    db.session.commit()
    emails = sign_up_many(shop, variant, 5)
    hooks = sandbox_store.receive_stock(db.session, shop, sandbox_variant_id, 2)
    db.session.commit()
    assert sandbox_store.deliver(shop, hooks) == [200]
    waiting.wait_until(lambda: len(smtp.mailbox.messages) >= 4, timeout=30, what="alerts")
    assert recipients(smtp) == emails[:4]  # 2 per unit
    assert "with only 2 available" in smtp.mailbox.messages[0].get_body(("plain",)).get_content()


def test_an_unconfirmed_address_is_never_alerted(smtp_app, smtp):
    shop, sandbox_variant_id, variant = waiting_shop()
    shop.settings.notify_double_opt_in = True
    db.session.commit()
    emails = sign_up_many(shop, variant, 3)  # each gets a confirmation mail
    waiting.wait_until(lambda: len(smtp.mailbox.messages) >= 3, timeout=30, what="confirmations")
    confirm_mail = smtp.mailbox.messages[1]
    assert confirm_mail["Subject"].startswith("Please confirm")
    assert confirm_mail["List-Unsubscribe"] is None  # a transactional confirmation
    second = db.session.scalar(
        select(NotifySubscription).where(NotifySubscription.email == emails[1])
    )
    assert current_app.test_client().post(f"/notify/confirm/{second.token}").status_code == 200

    hooks = sandbox_store.receive_stock(db.session, shop, sandbox_variant_id, 3)
    db.session.commit()
    assert sandbox_store.deliver(shop, hooks) == [200]
    waiting.wait_until(lambda: len(smtp.mailbox.messages) >= 4, timeout=30, what="the alert")
    fresh()
    alerts = [m for m in smtp.mailbox.messages if "back in stock" in m["Subject"]]
    assert [m["To"] for m in alerts] == [emails[1]]
    assert db.session.scalars(select(Restock)).one().status == RestockStatus.DONE


def test_one_shops_restock_alerts_only_its_own_subscribers(smtp_app, smtp):
    shop, sandbox_variant_id, variant = waiting_shop()
    other = factories.shop("other.sandbox.local")
    other.name = "Other"
    db.session.commit()
    product = factories.sandbox_product(other, "Linen shirt", [("M / Blue", "LIN-M", 0, "deny")])
    other_variant = sandbox_store_variant(other, product.variants[0])
    sign_up_many(other, other_variant, 2)
    mine = sign_up_many(shop, variant, 1)
    hooks = sandbox_store.receive_stock(db.session, shop, sandbox_variant_id, 5)
    db.session.commit()
    assert sandbox_store.deliver(shop, hooks) == [200]
    waiting.wait_until(lambda: len(smtp.mailbox.messages) >= 1, timeout=30, what="the alert")
    assert recipients(smtp) == mine
    fresh()
    assert {s.status for s in db.session.scalars(select(NotifySubscription)).all()} == {
        SubscriptionStatus.ALERTED,
        SubscriptionStatus.ACTIVE,
    }
    others = select(NotifySubscription).where(NotifySubscription.shop_id == other.id)
    assert {s.status for s in db.session.scalars(others)} == {SubscriptionStatus.ACTIVE}


# --- the pure decision ---------------------------------------------------------------------------


@given(
    st.lists(st.integers(min_value=0, max_value=20), min_size=1, max_size=12),
    st.integers(min_value=1, max_value=5),
    st.integers(min_value=0, max_value=200),
)
def test_batches_never_exceed_the_rate_and_never_repeat_anyone(stock_checks, rate, waiting_n):
    queue = list(range(waiting_n))
    alerted: list[int] = []
    for units in stock_checks:
        batch = next_batch(queue, units, rate)
        assert len(batch) <= units * rate
        assert batch == queue[: len(batch)]  # sign-up order
        if units == 0:
            assert batch == []
        alerted.extend(batch)
        queue = queue[len(batch) :]
    assert len(alerted) == len(set(alerted))
    assert alerted == list(range(len(alerted)))


def test_an_untracked_variant_alerts_in_bounded_batches():
    assert batch_size(None, 1, 10) == 10
    assert batch_size(None, 1, 10_000) == 500
    assert batch_size(3, 1, 0) == 0


def test_confirming_after_the_variant_came_back_still_alerts(smtp_app, smtp):
    shop, sandbox_variant_id, variant = waiting_shop()
    shop.settings.notify_double_opt_in = True
    db.session.commit()
    (email,) = sign_up_many(shop, variant, 1)
    hooks = sandbox_store.receive_stock(db.session, shop, sandbox_variant_id, 1)
    db.session.commit()
    assert sandbox_store.deliver(shop, hooks) == [200]
    fresh()
    assert db.session.scalars(select(Restock)).all() == []  # nobody confirmed was waiting
    sub = db.session.scalars(select(NotifySubscription)).one()
    assert current_app.test_client().post(f"/notify/confirm/{sub.token}").status_code == 200
    waiting.wait_until(
        lambda: [m for m in smtp.mailbox.messages if "back in stock" in m["Subject"]],
        timeout=30,
        what="the alert after confirming",
    )
    assert recipients(smtp) == [email, email]  # the confirmation request, then the alert


def test_turning_the_form_off_still_alerts_those_already_waiting(smtp_app, smtp):
    shop, sandbox_variant_id, variant = waiting_shop()
    (email,) = sign_up_many(shop, variant, 1)
    shop.settings.notify_enabled = False  # no new sign-ups from now on
    db.session.commit()
    hooks = sandbox_store.receive_stock(db.session, shop, sandbox_variant_id, 1)
    db.session.commit()
    assert sandbox_store.deliver(shop, hooks) == [200]
    waiting.wait_until(lambda: recipients(smtp) == [email], timeout=30, what="the alert")


def test_a_batch_bigger_than_one_job_goes_on_at_once_in_chunks(smtp_app, smtp, monkeypatch):
    from plugin.services import restock_alerts

    monkeypatch.setattr(restock_alerts, "CHUNK", 3)
    shop, sandbox_variant_id, variant = waiting_shop()
    emails = sign_up_many(shop, variant, 12)
    hooks = sandbox_store.receive_stock(db.session, shop, sandbox_variant_id, 10)
    db.session.commit()
    assert sandbox_store.deliver(shop, hooks) == [200]
    waiting.wait_until(lambda: len(smtp.mailbox.messages) >= 10, timeout=30, what="10 alerts")
    assert recipients(smtp) == emails[:10]  # one batch of 10 (10 units, 1 per unit), in order
    fresh()
    restock = db.session.scalars(select(Restock)).one()
    assert (restock.batches, restock.steps, restock.alerted) == (1, 4, 10)
    assert restock.status == RestockStatus.OPEN and restock.batch_remaining == 0
    assert restock.next_batch_at > datetime.now(UTC) + timedelta(minutes=14)
