"""The customer mails the ledger and the merchant's settings cause, queued in the same unit of
work as the change (jobs inline, no SMTP_URL: the local outbox): one backorder confirmation per
order with each line's ETA; one ETA-change notice per open line, several moves within the quiet
period making one mail that keeps the first date the customer was told; ships soon with how many
units are coming. Each kind follows its shop switch and is never queued twice."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import time_machine
from sqlalchemy import func, select

from plugin.extensions import db
from plugin.models import (
    BackorderStep,
    MailStatus,
    OutboxMail,
    StoreSettings,
    VariantBadge,
    WebhookEvent,
)
from plugin.services import sandbox_store, settings_form
from tests import factories
from tests.test_sandbox_order_lifecycle import line_of, place, receive, store_with

MONDAY = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def mails(kind: str | None = None) -> list[OutboxMail]:
    db.session.expire_all()
    query = select(OutboxMail).order_by(OutboxMail.id)
    if kind:
        query = query.where(OutboxMail.kind == kind)
    return list(db.session.scalars(query))


def shop_settings() -> StoreSettings:
    shop = sandbox_store.ensure_shop(db.session)
    return shop.settings


def configure(**values) -> None:
    settings = shop_settings()
    for name, value in values.items():
        setattr(settings, name, value)
    db.session.commit()


def save_settings(client, **changes) -> None:
    """Post the sandbox settings form as the merchant would, with `changes` on top; per-variant
    values (`variant-<id>-eta|lead|limit`, with `eta_reason`) go to the Variants page."""
    per_variant = {k: changes.pop(k) for k in list(changes) if k.startswith("variant-")}
    if per_variant:
        per_variant["eta_reason"] = changes.pop("eta_reason", "")
        response = client.post("/sandbox/variants", data=per_variant, follow_redirects=True)
        assert response.status_code == 200, response.text[:2000]
        assert "Saved " in response.text or "Nothing to save" in response.text
        if not changes:
            return
    shop = sandbox_store.ensure_shop(db.session)
    form = settings_form.form_values(shop)
    form.update(changes)
    response = client.post("/sandbox/settings", data=form, follow_redirects=True)
    assert response.status_code == 200, response.text[:2000]
    assert "Settings saved." in response.text


def badge_eta(variant_id: int) -> date | None:
    db.session.expire_all()
    return db.session.get(VariantBadge, variant_id).eta


# --- backorder confirmation --------------------------------------------------------------------


def test_an_order_on_backorder_gets_one_confirmation_listing_its_eta(client):
    vid = store_with(0)
    order_id = place(client, vid, 2, "ada@example.com")
    line = line_of(order_id)
    eta = badge_eta(line.variant_id)
    (mail,) = mails()
    assert mail.kind == "backorder_confirmation"
    assert mail.recipient == "ada@example.com"
    assert mail.idempotency_key == f"confirmation:{line.order.id}"
    assert mail.status == MailStatus.SENT  # no SMTP_URL: kept in the local outbox
    assert mail.order_id == line.order.id and mail.backorder_line_id == line.id
    assert "Tee (Medium) \N{MULTIPLICATION SIGN} 2" in mail.text_body
    assert f"{eta:%B} {eta.day}, {eta.year}" in mail.text_body
    assert "https://app.test/orders/cancel/" in mail.text_body

    # The store redelivers the order webhook, and a later event touches the order again.
    event = db.session.scalars(
        select(WebhookEvent).where(WebhookEvent.topic == "orders/create")
    ).first()
    event.status = event.status.__class__.PENDING
    db.session.commit()
    from plugin.jobs import process_webhook

    process_webhook(event.id)
    assert len(mails()) == 1


def test_an_order_in_stock_gets_no_confirmation(client):
    vid = store_with(5)
    place(client, vid, 2, "ada@example.com")
    assert mails() == []


def test_confirmations_follow_the_shop_switch(client):
    vid = store_with(0)
    configure(email_backorder_confirmation=False)
    order_id = place(client, vid, 1, "ada@example.com")
    assert mails() == []
    assert line_of(order_id).open_quantity == 1  # the ledger keeps the line all the same


def test_an_order_without_an_address_is_kept_in_the_ledger_and_mailed_nothing(app):
    """A platform may withhold the address (guest or POS orders, protected data)."""
    from plugin.models import Order

    shop = factories.shop()
    vid = (
        factories.sandbox_product(shop, "Tee", [("Medium", "TEE-M", 0, "continue")]).variants[0].id
    )
    order, hooks = factories.sandbox_order(shop, vid, 1, "ada@example.com")
    for hook in hooks:
        if hook.topic == "orders/create":
            hook.payload["email"] = hook.payload["contact_email"] = None
    assert sandbox_store.deliver(shop, hooks) == [200] * len(hooks)
    line = line_of(order.id)
    assert line.open_quantity == 1
    assert db.session.get(Order, line.order.id).customer_email is None
    assert mails() == []


# --- ETA changes -------------------------------------------------------------------------------


def test_eta_moves_within_the_quiet_period_become_one_notice_with_the_first_date(client):
    with time_machine.travel(MONDAY, tick=False) as clock:
        vid = store_with(0)
        order_id = place(client, vid, 1, "ada@example.com")
        line = line_of(order_id)
        first = badge_eta(line.variant_id)
        key = f"variant-{line.variant_id}-eta"
        save_settings(client, **{key: (first + timedelta(days=7)).isoformat()})
        clock.shift(timedelta(minutes=4))
        latest = first + timedelta(days=12)
        save_settings(
            client, **{key: latest.isoformat(), "eta_reason": "The supplier's ship is late."}
        )
        (notice,) = mails("eta_change")
        assert notice.status == MailStatus.PENDING  # waiting for the quiet period
        assert notice.send_after == MONDAY + timedelta(minutes=10)
        for day in (first, latest):
            assert f"{day:%B} {day.day}, {day.year}" in notice.text_body
        middle = first + timedelta(days=7)
        assert f"{middle:%B} {middle.day}," not in notice.text_body
        assert "The supplier's ship is late." in notice.text_body
        assert "https://app.test/orders/cancel/" in notice.text_body
        # Each move is in the line's timeline, with the reason.
        moves = db.session.scalars(
            select(BackorderStep.note).where(BackorderStep.kind == "eta_changed")
        ).all()
        assert len(moves) == 2 and "late" in moves[1]

        # The quiet period ends: the clock's sweep sends it; a later move is a new notice.
        clock.shift(timedelta(minutes=7))
        from plugin.jobs import send_due_mails

        send_due_mails()
        assert mails("eta_change")[0].status == MailStatus.SENT
        save_settings(client, **{key: (latest + timedelta(days=1)).isoformat()})
        assert len(mails("eta_change")) == 2


def test_earlier_dates_are_mailed_only_if_the_shop_asks(client):
    vid = store_with(0)
    order_id = place(client, vid, 1, "ada@example.com")
    line = line_of(order_id)
    key = f"variant-{line.variant_id}-eta"
    earlier = badge_eta(line.variant_id) - timedelta(days=3)
    save_settings(client, **{key: earlier.isoformat()})
    assert mails("eta_change") == []
    configure(email_eta_earlier=True)
    save_settings(client, **{key: (earlier - timedelta(days=1)).isoformat()})
    assert len(mails("eta_change")) == 1


def test_a_date_moved_back_within_the_quiet_period_sends_nothing(client):
    vid = store_with(0)
    order_id = place(client, vid, 1, "ada@example.com")
    line = line_of(order_id)
    key = f"variant-{line.variant_id}-eta"
    told = badge_eta(line.variant_id)
    save_settings(client, **{key: (told + timedelta(days=5)).isoformat()})
    save_settings(client, **{key: told.isoformat()})
    (notice,) = mails("eta_change")
    assert notice.status == MailStatus.SUPPRESSED
    assert "moved back" in notice.last_error


def test_eta_notices_follow_the_shop_switch_and_skip_lines_no_longer_waiting(client):
    vid = store_with(0)
    waiting = line_of(place(client, vid, 1, "ada@example.com"))
    key = f"variant-{waiting.variant_id}-eta"
    configure(email_eta_changed=False)
    save_settings(client, **{key: (badge_eta(waiting.variant_id) + timedelta(3)).isoformat()})
    assert mails("eta_change") == []
    configure(email_eta_changed=True)
    receive(client, vid, 1)  # the line is covered: nothing to tell about the date
    save_settings(client, **{key: (badge_eta(waiting.variant_id) + timedelta(9)).isoformat()})
    assert mails("eta_change") == []


# --- ships soon --------------------------------------------------------------------------------


def test_restocked_units_tell_their_customers_and_a_partial_line_says_how_many(client):
    vid = store_with(0)
    first = place(client, vid, 3, "ada@example.com")
    place(client, vid, 1, "grace@example.com")
    receive(client, vid, 2)
    (partial,) = mails("ships_soon")
    assert partial.recipient == "ada@example.com"
    assert "2 of the 3 units" in partial.text_body
    receive(client, vid, 2)  # the rest of Ada's line, and Grace's
    soon = mails("ships_soon")
    assert [m.recipient for m in soon] == ["ada@example.com"] * 2 + ["grace@example.com"]
    assert "Tee (Medium) in your order #1001 has arrived" in soon[1].text_body  # all covered
    assert line_of(first).allocated_quantity == 3
    assert db.session.scalar(select(func.count(OutboxMail.id))) == 2 + 3  # 2 confirmations


def test_ships_soon_follows_the_shop_switch(client):
    vid = store_with(0)
    place(client, vid, 1, "ada@example.com")
    configure(email_ships_soon=False)
    receive(client, vid, 1)
    assert mails("ships_soon") == []
