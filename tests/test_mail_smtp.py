"""Customer mails through a real SMTP server (aiosmtpd on 127.0.0.1), parsed as they arrived:
both parts, the headers (From with the shop's name, Reply-To, a Message-ID on the app's domain),
dates in the shop's zone and the customer's language, and the cancel link followed in the app.
A server stopped mid-batch and brought back still gets every mail exactly once (real Redis and
the Procfile's worker, RQ's own retries); a 5xx on RCPT bounces the mail and suppresses the
address."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import parseaddr

import pytest
import time_machine
from sqlalchemy import select, text

from plugin import create_app
from plugin.extensions import db
from plugin.models import MailStatus, OutboxMail, SuppressedAddress
from plugin.services import customer_mails, ledger, outbox
from plugin.services.badging import refresh_badge
from tests import factories, waiting
from tests.conftest import _truncate, smtp_env
from tests.smtp_support import MAIL_FROM, SmtpServer
from tests.test_end_to_end_worker import ROOT, procfile_worker_command

# 20:30 UTC on a Monday is already Tuesday morning in Auckland (UTC+13 in March).
EVENING_UTC = datetime(2026, 3, 2, 20, 30, tzinfo=UTC)


# --- building mails ----------------------------------------------------------------------------


def backorder_shop():
    shop = factories.shop(timezone="Pacific/Auckland")
    shop.name = "Maison Lune"
    shop.contact_email = "hello@maison-lune.example"
    shop.settings.business_days = False
    shop.settings.default_lead_days = 10
    db.session.commit()
    return shop


def confirmation_for(shop, locale: str, email_address: str = "ada@example.com") -> list[int]:
    """An order of 2 units of a variant with no stock, recorded as the pipeline does: settled,
    badge refreshed, mails queued in the same unit of work. Returns the mail ids."""
    product = factories.product(
        shop,
        f"p-{locale}",
        "Lin shirt",
        [{"platform_id": f"v-{locale}", "title": "M", "tracked": True, "sells_past_zero": True}],
    )
    variant = product.variants[0]
    order = factories.order(shop, f"o-{locale}", [(variant, 2)], email=email_address)
    order.customer_locale = locale
    order.customer_name = "Ada"
    db.session.flush()
    settled = ledger.settle_variant(db.session, variant, ledger.Cause("orders/create"))
    refresh_badge(db.session, shop, variant, cause="orders/create")
    ids = customer_mails.after_settling(db.session, shop, settled.steps, customer_mails.app_links())
    db.session.commit()
    return ids


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(preferencelist=("plain",)).get_content()
    html = message.get_body(preferencelist=("html",)).get_content()
    return text, html


# --- what arrives ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "locale, eta, subject_word",
    [
        ("en-US", "March 13, 2026", "backorder"),
        ("fr-FR", "13 mars 2026", "commande"),
        ("de", "13. März 2026", "Bestellung"),
        ("es", "13 de marzo de 2026", "pedido"),
    ],
)
def test_the_confirmation_arrives_in_both_parts_in_the_shops_zone_and_customers_language(
    smtp_app, smtp, locale, eta, subject_word
):
    shop = backorder_shop()
    with time_machine.travel(EVENING_UTC, tick=False):  # the link is followed in time
        ids = confirmation_for(shop, locale)
        from plugin.jobs import queue_mails

        queue_mails(ids)
        (message,) = smtp.mailbox.messages
        assert message.is_multipart()
        text, html = parts(message)
        # Ten days from Tuesday 3 March in Auckland (it was still 2 March in UTC).
        assert eta in text and eta in html
        assert subject_word.lower() in message["Subject"].lower()
        assert parseaddr(message["From"]) == ("Maison Lune", MAIL_FROM)
        assert message["To"] == "ada@example.com"
        assert message["Reply-To"] == "hello@maison-lune.example"
        assert message["Message-ID"].endswith("@app.test>")
        assert f'lang="{locale.split("-")[0]}"' in html
        assert 'style="' in html  # the layout's CSS is inlined
        assert "Lin shirt (M)" in text
        mail = db.session.scalars(select(OutboxMail)).one()
        assert mail.status == MailStatus.SENT and mail.message_id == message["Message-ID"]

        # The cancel link in the mail works when followed in the app.
        link = next(word for word in text.split() if word.startswith("https://app.test/orders/"))
        page = smtp_app.test_client().get(link.removeprefix("https://app.test"))
        assert page.status_code == 200
        assert "Lin shirt" in page.text


def test_the_merchants_reply_to_wins_over_the_platforms_contact_address(smtp_app, smtp):
    shop = backorder_shop()
    shop.settings.email_reply_to = "orders@maison-lune.example"
    db.session.commit()
    from plugin.jobs import queue_mails

    queue_mails(confirmation_for(shop, "en"))
    (message,) = smtp.mailbox.messages
    assert message["Reply-To"] == "orders@maison-lune.example"


def test_a_hard_bounce_marks_the_mail_and_no_further_mail_goes_to_the_address(smtp_app, smtp):
    from plugin.jobs import queue_mails

    shop = backorder_shop()
    smtp.mailbox.refused.add("gone@example.com")
    queue_mails(confirmation_for(shop, "en", "gone@example.com"))
    bounced = db.session.scalars(select(OutboxMail)).one()
    db.session.refresh(bounced)
    assert bounced.status == MailStatus.BOUNCED
    assert "550" in bounced.last_error
    assert db.session.scalars(select(SuppressedAddress.email)).all() == ["gone@example.com"]
    assert smtp.mailbox.messages == []

    smtp.mailbox.refused.clear()  # even if the server would take it now, the address is off
    later = outbox.queue_mail(
        db.session,
        shop,
        kind="ships_soon",
        recipient="Gone@Example.com",
        key="ships_soon:test:later",
        mail=outbox.Composed("Ships soon", "It ships soon.", "<p>It ships soon.</p>"),
    )
    other = outbox.queue_mail(
        db.session,
        shop,
        kind="ships_soon",
        recipient="grace@example.com",
        key="ships_soon:test:other",
        mail=outbox.Composed("Ships soon", "It ships soon.", "<p>It ships soon.</p>"),
    )
    db.session.commit()
    queue_mails([later, other])
    db.session.expire_all()
    assert db.session.get(OutboxMail, later).status == MailStatus.SUPPRESSED
    assert db.session.get(OutboxMail, other).status == MailStatus.SENT
    assert [m["To"] for m in smtp.mailbox.messages] == ["grace@example.com"]


# --- an outage mid-batch, through Redis and the Procfile's worker -------------------------------


@pytest.fixture
def smtp_queued_app(database_url, redis_url, smtp):
    _truncate(database_url)
    application = create_app(smtp_env(database_url, smtp, REDIS_URL=redis_url))
    with application.app_context():
        yield application


@pytest.fixture
def smtp_worker(smtp_queued_app, database_url, redis_url, smtp, tmp_path):
    env = {**os.environ, **smtp_env(database_url, smtp, REDIS_URL=redis_url)}
    env["PYTHONPATH"] = str(ROOT)
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        procfile_worker_command(redis_url), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
    print((tmp_path / "worker.log").read_text()[-4000:])


def fresh_reads() -> None:
    db.session.expire_all()
    db.session.rollback()


def wait_until(condition, timeout=60.0, what="condition"):
    return waiting.wait_until(
        condition, timeout=timeout, what=what, interval=0.1, before_each=fresh_reads
    )


BATCH = 10


@pytest.mark.services
def test_smtp_stopped_mid_batch_then_back_every_mail_arrives_exactly_once(smtp_worker, smtp):
    from plugin.jobs import queue_mails

    shop = backorder_shop()
    ids = [
        outbox.queue_mail(
            db.session,
            shop,
            kind="ships_soon",
            recipient=f"customer{n}@example.com",
            key=f"ships_soon:batch:{n}",
            mail=outbox.Composed(f"Mail {n}", f"Mail {n}.", f"<p>Mail {n}.</p>"),
        )
        for n in range(BATCH)
    ]
    db.session.commit()
    smtp.mailbox.hold_after = 4  # the fifth mail is in DATA when the server goes away
    queue_mails(ids)
    waiting.wait_until(lambda: smtp.mailbox.holding, timeout=60, what="the fifth mail in DATA")
    smtp.stop()

    def undelivered_failed():
        rows = db.session.scalars(select(OutboxMail).where(OutboxMail.id.in_(ids))).all()
        waiting_rows = [r for r in rows if r.status != MailStatus.SENT]
        return len(waiting_rows) == BATCH - 4 and all(
            r.status == MailStatus.PENDING and r.last_error and r.attempts >= 1
            for r in waiting_rows
        )

    wait_until(undelivered_failed, what="the rest of the batch deferred by the outage")
    assert len(smtp.mailbox.messages) == 4

    smtp.mailbox.hold_after = None
    smtp.start()  # RQ's retries (5 s, then 30 s) deliver the rest

    def all_sent():
        rows = db.session.scalars(select(OutboxMail).where(OutboxMail.id.in_(ids))).all()
        return all(r.status == MailStatus.SENT for r in rows)

    wait_until(all_sent, timeout=90, what="every mail sent after the outage")
    subjects = sorted(m["Subject"] for m in smtp.mailbox.messages)
    assert subjects == sorted(f"Mail {n}" for n in range(BATCH))  # each exactly once
    message_ids = {m["Message-ID"] for m in smtp.mailbox.messages}
    rows = db.session.scalars(select(OutboxMail).where(OutboxMail.id.in_(ids))).all()
    assert message_ids == {r.message_id for r in rows}
    assert len(message_ids) == BATCH

    # Retried or re-queued later (the clock's sweep, a redelivery): nothing goes twice.
    queue_mails(ids)
    from plugin.jobs import send_mail

    for mail_id in ids:
        assert "nothing to do" in send_mail(mail_id)
    assert len(smtp.mailbox.messages) == BATCH
    # And it let go of each row: another worker's send of the same mail does not wait on it.
    # (The worker's own sends of the re-queued mails may hold one for a moment.)
    waiting.wait_until(
        lambda: all(row_lockable_now(OutboxMail.__tablename__, mail_id) for mail_id in ids),
        timeout=20,
        what="every mail row free",
    )


def row_lockable_now(table: str, row_id: int) -> bool:
    """On a connection of its own: FOR UPDATE NOWAIT fails if another transaction holds it."""
    from sqlalchemy.exc import OperationalError

    with db.engine.connect() as other:
        try:
            other.execute(
                text(f"SELECT id FROM {table} WHERE id = :id FOR UPDATE NOWAIT"), {"id": row_id}
            )
        except OperationalError:
            return False
        finally:
            other.rollback()
    return True


# --- the customer's story on the sandbox, through Redis and the Procfile's worker --------------


def arrived(smtp: SmtpServer, to: str) -> list[EmailMessage]:
    return [m for m in smtp.mailbox.messages if m["To"] == to]


@pytest.mark.services
def test_a_customer_hears_confirmation_eta_change_after_the_quiet_period_and_ships_soon(
    smtp_worker, smtp, smtp_queued_app
):
    from plugin.models import VariantBadge, utcnow
    from tests.test_customer_mails import save_settings
    from tests.test_sandbox_order_lifecycle import line_of, place, receive

    client = smtp_queued_app.test_client()
    shop = factories.shop()
    shop.settings.business_days = False
    shop.settings.email_quiet_minutes = 1
    db.session.commit()
    vid = (
        factories.sandbox_product(shop, "Tee", [("Medium", "TEE-M", 0, "continue")]).variants[0].id
    )

    # Order on backorder: the worker records it and the confirmation arrives.
    order_id = place(client, vid, 1, "ada@example.com")
    (confirmation,) = wait_until(lambda: arrived(smtp, "ada@example.com"), what="confirmation")
    line = wait_until(lambda: line_of(order_id), what="the backorder line")
    told = parts(confirmation)[0]
    first_eta = db.session.get(VariantBadge, line.variant_id).eta
    assert f"{first_eta:%B} {first_eta.day}, {first_eta.year}" in told
    assert "backorder" in confirmation["Subject"].lower()

    # The merchant moves the date twice within the quiet period (1 minute). The test's clock
    # starts 50 s back, so the worker's real clock sees the quiet period end 10 s from now.
    key = f"variant-{line.variant_id}-eta"
    moved = first_eta + timedelta(days=7)
    latest = first_eta + timedelta(days=10)
    with time_machine.travel(utcnow() - timedelta(seconds=50), tick=False) as clock:
        save_settings(client, **{key: moved.isoformat()})
        clock.shift(timedelta(seconds=5))
        save_settings(client, **{key: latest.isoformat(), "eta_reason": "Late supplier."})
    (notice_row,) = db.session.scalars(
        select(OutboxMail).where(OutboxMail.kind == "eta_change")
    ).all()
    assert notice_row.status == MailStatus.PENDING and notice_row.send_after > utcnow()
    assert len(arrived(smtp, "ada@example.com")) == 1  # nothing yet: the quiet period runs

    notices = wait_until(
        lambda: arrived(smtp, "ada@example.com")[1:], timeout=60, what="the ETA notice"
    )
    (notice,) = notices
    text, _html = parts(notice)
    for day in (first_eta, latest):
        assert f"{day:%B} {day.day}, {day.year}" in text
    assert f"{moved:%B} {moved.day}," not in text
    assert "Late supplier." in text

    # The worker records the send just after the server took the mail: wait for that commit.
    def recorded_sent_at():
        db.session.refresh(notice_row)
        return notice_row.sent_at

    sent_at = wait_until(recorded_sent_at, what="the notice recorded as sent")
    assert sent_at >= notice_row.send_after

    # Restock: the unit is allocated to Ada's line and she hears it ships soon.
    receive(client, vid, 1)
    soon = wait_until(lambda: arrived(smtp, "ada@example.com")[2:], what="ships soon")
    assert "ships soon" in soon[0]["Subject"]
    kinds = [
        row.kind for row in db.session.scalars(select(OutboxMail).order_by(OutboxMail.id)).all()
    ]
    assert kinds == ["backorder_confirmation", "eta_change", "ships_soon"]
    assert len(smtp.mailbox.messages) == 3  # each exactly once


# --- the Mail Order Rule on the sandbox, through Redis and the Procfile's worker ----------------


def sent_mails() -> list[OutboxMail]:
    return list(db.session.scalars(select(OutboxMail).order_by(OutboxMail.id)))


@pytest.mark.services
def test_30_days_on_a_delay_notice_lets_a_customer_cancel_and_the_units_go_to_the_next(
    smtp_worker, smtp, smtp_queued_app
):
    """Two customers order the same sold-out variant on backorder; 30 days pass; the first
    customer's delay notice arrives with the cancel link; she cancels the line; the shop lets the
    app cancel on the platform, so the worker takes the line off the store's order; the restock
    that covers one order goes to the second customer.

    The clocks: the worker runs on the real clock, so the story's start is moved into the past
    rather than its end into the future. The test process is frozen-and-ticking 31 days back
    (time-machine) while the store takes the two orders, 11 days apart; the store stamps them
    then, and the worker records them with those dates (whatever its own clock decides, such as
    the badge's ETA, is then after the orders and so was not what they were told). Everything
    after, the delay-notice job included, runs on the real clock in both processes: a mail
    queued in the test process is due at once for the worker, and the signed links are fresh.
    The first customer is then 31 days past an order with no date stated (notice due), the
    second 20 days (not yet)."""
    from plugin.jobs import queue_mails, send_delay_notices, send_mail
    from plugin.models import BackorderStatus, BackorderStep, SandboxOrder, Variant, utcnow
    from tests.test_sandbox_order_lifecycle import line_of, place, receive

    client = smtp_queued_app.test_client()
    shop = factories.shop()
    shop.name = "Maison Lune"
    shop.contact_email = "hello@maison-lune.example"
    shop.settings.business_days = False
    shop.settings.customer_cancel_on_platform = True
    db.session.commit()

    with time_machine.travel(utcnow() - timedelta(days=31), tick=True) as clock:
        vid = (
            factories.sandbox_product(shop, "Tee", [("Medium", "TEE-M", 0, "continue")])
            .variants[0]
            .id
        )
        first = place(client, vid, 1, "ada@example.com")
        clock.shift(timedelta(days=11))
        second = place(client, vid, 1, "grace@example.com")
    for customer in ("ada@example.com", "grace@example.com"):
        wait_until(lambda c=customer: arrived(smtp, c), what=f"the confirmation to {customer}")
    ada = wait_until(lambda: line_of(first), what="the first backorder line")
    grace = wait_until(lambda: line_of(second), what="the second backorder line")
    assert ada.ordered_at < grace.ordered_at < utcnow() - timedelta(days=19)
    assert ada.status == grace.status == BackorderStatus.OPEN

    # The daily job, in the test process; the worker sends what it queued.
    assert send_delay_notices() == "1 delay notice(s) queued, 0 line(s) flagged"
    (notice,) = wait_until(lambda: arrived(smtp, "ada@example.com")[1:], what="delay notice")
    text, html = parts(notice)
    assert "cancel" in text.lower() and "refund" in text.lower()
    assert "Tee (Medium)" in text
    cancel_link = next(w for w in text.split() if w.startswith("https://app.test/orders/cancel/"))
    assert cancel_link in html
    assert len(arrived(smtp, "grace@example.com")) == 1  # her date has not passed

    # She follows the link: the page asks and changes nothing; the form's POST cancels.
    path = cancel_link.removeprefix("https://app.test")
    page = client.get(path)
    assert page.status_code == 200 and "Tee" in page.text
    assert line_of(first).status == BackorderStatus.OPEN
    assert [s.kind for s in line_of(first).steps][-1] == "delay_notified"
    done = client.post(path, data={"scope": "line"})
    assert done.status_code == 200 and "cancelling it now" in done.text

    # The worker cancels the store's order and the ledger follows.
    def cancelled_line():
        line = line_of(first)
        return line if line.status == BackorderStatus.CANCELLED else None

    line = wait_until(cancelled_line, what="the first line cancelled")
    assert line.cancelled_quantity == 1 and line.open_quantity == 0
    kinds = [
        s.kind
        for s in db.session.scalars(
            select(BackorderStep).where(BackorderStep.line_id == line.id).order_by(BackorderStep.id)
        )
    ]
    assert kinds == ["opened", "delay_notified", "cancel_requested", "cancel_done", "cancelled"]
    # The line came off the store's order (a line cancel, not the whole order's).
    assert db.session.get(SandboxOrder, first).current_quantity == 0
    assert db.session.get(SandboxOrder, second).current_quantity == 1
    (told,) = wait_until(lambda: arrived(smtp, "hello@maison-lune.example"), what="merchant")
    assert "Cancellation requested" in told["Subject"]

    # The store's webhooks for that cancellation (the line off the order, its unit back on the
    # shelf) reach the app after the line is cancelled; the delivery below must not overtake them.
    def app_stock():
        return db.session.scalar(
            select(Variant.inventory_total).where(
                Variant.shop_id == shop.id, Variant.platform_id == str(vid)
            )
        )

    wait_until(lambda: app_stock() == -1, what="the cancelled unit back in the app's stock")

    # A restock that covers one order: the unit goes to the second customer, who hears it.
    receive(client, vid, 1)
    soon = wait_until(lambda: arrived(smtp, "grace@example.com")[1:], what="ships soon")
    assert "ships soon" in soon[0]["Subject"]
    grace = line_of(second)
    assert grace.status == BackorderStatus.ALLOCATED and grace.allocated_quantity == 1
    assert line_of(first).status == BackorderStatus.CANCELLED

    # Every mail exactly once, even when the sending is asked for again.
    wait_until(
        lambda: all(m.status == MailStatus.SENT for m in sent_mails()), what="every mail sent"
    )
    mails = sent_mails()
    assert [(m.kind, m.recipient) for m in mails] == [
        ("backorder_confirmation", "ada@example.com"),
        ("backorder_confirmation", "grace@example.com"),
        ("delay_notice", "ada@example.com"),
        ("merchant_cancel_request", "hello@maison-lune.example"),
        ("ships_soon", "grace@example.com"),
    ]
    for mail in mails:
        assert "nothing to do" in send_mail(mail.id)
    queue_mails([m.id for m in mails])
    assert send_delay_notices() == "0 delay notice(s) queued, 0 line(s) flagged"
    assert sorted(m["Message-ID"] for m in smtp.mailbox.messages) == sorted(
        m.message_id for m in mails
    )
