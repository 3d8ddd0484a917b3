"""A customer's page on the support desk (issue 12, must-have 2): their lines by state with the
date they see, the date first promised and each line's timeline; the mails they were sent; and
the staff actions (resend, change one line's date with a reason, cancel a line for them, an
internal note), each in the timeline with the staff user. Only the shop's own customer."""

from __future__ import annotations

import json
import re
import threading
from datetime import timedelta
from html import unescape
from pathlib import Path

import pytest
from sqlalchemy import select
from werkzeug.serving import make_server

from plugin.extensions import db
from plugin.models import (
    BackorderLine,
    BackorderStatus,
    BackorderStep,
    CustomerNote,
    MailStatus,
    OutboxMail,
    SandboxOrder,
    Shop,
    utcnow,
)
from plugin.services import bigcommerce_session
from tests import factories
from tests.shopify_install_helpers import session_token
from tests.test_sandbox_order_lifecycle import line_of, place, receive
from tests.waiting import wait_until

STORE = "deskbc2"
OWNER = 5151
SHOPIFY = "desk-shop.myshopify.com"
ADA = "ada@example.com"


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", unescape(re.sub(r"<[^>]+>", " ", html)))


def mails_to(address: str) -> list[OutboxMail]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(OutboxMail).where(OutboxMail.recipient == address).order_by(OutboxMail.id)
        )
    )


def steps(line_id: int, kind: str) -> list[BackorderStep]:
    db.session.expire_all()
    return list(
        db.session.scalars(
            select(BackorderStep)
            .where(BackorderStep.line_id == line_id, BackorderStep.kind == kind)
            .order_by(BackorderStep.id)
        )
    )


@pytest.fixture
def ada(app, client):
    """The sandbox store: Ada ordered 1 medium (#1001) and 2 large (#1002) shirts, Grace 1 large
    (#1003), all on backorder; a restock of 1 medium then reserves Ada's first line."""
    owner = factories.shop()
    owner.settings.email_quiet_minutes = 0
    db.session.commit()
    shirts = factories.sandbox_product(
        owner,
        "Linen Shirt",
        [("Medium", "LIN-M", 0, "continue"), ("Large", "LIN-L", 0, "continue")],
    )
    medium, large = (v.id for v in shirts.variants)
    first = place(client, medium, 1, ADA)
    second = place(client, large, 2, ADA)
    place(client, large, 1, "grace@example.com")
    receive(client, medium, 1)  # Ada's medium is reserved for her
    return {"shop": owner, "allocated": line_of(first).id, "open": line_of(second).id}


def page(client, email: str = ADA, **args):
    return client.get("/sandbox/desk/customer", query_string={"email": email, **args})


def post(client, action: str, **form):
    return client.post(f"/sandbox/desk/customer/{action}", data={"email": ADA, **form})


def test_the_page_shows_lines_by_state_with_dates_timelines_and_mails(ada, client):
    answer = page(client)
    assert answer.status_code == 200
    shown = text_of(answer.text)
    assert "2 orders · 2 lines owed" in shown
    opened = shown.split("Open: waiting for stock (1)")[1].split("Allocated:")[0]
    assert "Order #1002 · Linen Shirt (Large) LIN-L" in opened
    assert "2 backordered: 2 open, 0 allocated" in opened
    line = db.session.get(BackorderLine, ada["open"])
    assert line.promised_eta is not None
    assert f"Date the customer sees now {line.promised_eta.isoformat()}" in opened
    assert f"Date first promised {line.promised_eta.isoformat()}" in opened
    assert "Went on backorder · 2 units · cause: orders/create" in opened
    allocated = shown.split("Allocated: stock reserved, to ship (1)")[1].split("Closed:")[0]
    assert "Order #1001 · Linen Shirt (Medium)" in allocated
    assert "Restocked units reserved · 1 unit" in allocated
    assert "Closed: shipped or cancelled (0)" in shown
    # Her mails, as sent: the two confirmations and the "ships soon" one; not Grace's.
    mails = shown.split("Mails to this customer")[1].split("Internal notes")[0]
    assert mails.count("Your order #100") == 2 and "#1003" not in mails
    assert "Sent" in mails
    # Each mail's text can be read.
    mail = mails_to(ADA)[0]
    link = f"/sandbox/desk/customer/mail?email={ADA}&amp;mail_id={mail.id}"
    assert link in answer.text
    body = client.get(unescape(link))
    assert body.status_code == 200 and mail.text_body.splitlines()[0] in unescape(body.text)


def test_another_shops_customer_or_mail_is_not_found(ada, client):
    other = factories.bigcommerce_store(STORE, owner=OWNER)
    shirt = factories.product(other, "p1", "Other shirt", [{"platform_id": "v1", "sku": "O-1"}])
    factories.backorder_line(shirt.variants[0], "3001", email="bea@example.com")
    assert page(client, "bea@example.com").status_code == 404
    assert page(client, "nobody@example.com").status_code == 404
    assert page(client, "not an address").status_code == 400
    bea_mail = OutboxMail(
        shop_id=other.id,
        kind="backorder_confirmation",
        recipient="bea@example.com",
        subject="Bea's mail",
        text_body="secret",
        html_body="secret",
        idempotency_key="bea-1",
        status=MailStatus.SENT,
        sent_at=utcnow(),
    )
    db.session.add(bea_mail)
    db.session.commit()
    for email in (ADA, "bea@example.com"):
        shown = client.get(
            "/sandbox/desk/customer/mail", query_string={"email": email, "mail_id": bea_mail.id}
        )
        assert shown.status_code == 404 and "secret" not in shown.text
    refused = post(client, "resend", mail_id=bea_mail.id)
    assert refused.status_code == 404
    assert len(mails_to("bea@example.com")) == 1


def test_a_sent_mail_is_resent_as_a_new_mail_and_a_pending_one_is_not(ada, client):
    confirmation = next(m for m in mails_to(ADA) if "#1002" in m.subject)
    assert confirmation.status == MailStatus.SENT
    for _ in (1, 2):
        answer = post(client, "resend", mail_id=confirmation.id)
        assert answer.status_code == 303
        assert "done=resent" in answer.headers["Location"]
    copies = [m for m in mails_to(ADA) if m.idempotency_key.startswith("resend:")]
    assert [m.idempotency_key for m in copies] == [
        f"resend:{confirmation.id}:1",
        f"resend:{confirmation.id}:2",
    ]
    assert all(m.subject == confirmation.subject for m in copies)
    assert all(m.text_body == confirmation.text_body for m in copies)
    resent = steps(confirmation.backorder_line_id, "mail_resent")
    assert [(s.cause, s.staff_user) for s in resent] == [("support", "sandbox")] * 2
    shown = text_of(client.get(answer.headers["Location"]).text)
    assert "The mail is queued to be sent again." in shown
    assert "Mail resent" in shown and "by sandbox" in shown

    pending = OutboxMail(
        shop_id=ada["shop"].id,
        kind="eta_change",
        recipient=ADA,
        subject="Not yet",
        text_body="x",
        html_body="x",
        idempotency_key="pending-1",
        send_after=utcnow() + timedelta(hours=1),
    )
    db.session.add(pending)
    db.session.commit()
    before = len(mails_to(ADA))
    refused = post(client, "resend", mail_id=pending.id)
    assert refused.status_code == 409
    assert "never sent" in text_of(refused.text)
    assert len(mails_to(ADA)) == before


def test_one_lines_date_changes_with_a_reason_and_the_customer_is_told(ada, client):
    line = db.session.get(BackorderLine, ada["open"])
    old = line.promised_eta
    new = old + timedelta(days=9)
    answer = post(
        client, "eta", line_id=line.id, eta=new.isoformat(), reason="The mill is closed a week."
    )
    assert answer.status_code == 303, answer.text[:500]
    db.session.expire_all()
    line = db.session.get(BackorderLine, ada["open"])
    assert (line.eta_override, line.eta_reason) == (new, "The mill is closed a week.")
    (step,) = steps(line.id, "eta_changed")
    assert (step.cause, step.staff_user) == ("support", "sandbox")
    assert json.loads(step.note) == {
        "from": old.isoformat(),
        "to": new.isoformat(),
        "reason": "The mill is closed a week.",
    }
    (notice,) = [m for m in mails_to(ADA) if m.kind == "eta_change"]
    assert notice.backorder_line_id == line.id
    assert "The mill is closed a week." in notice.text_body
    shown = text_of(client.get(answer.headers["Location"]).text)
    assert f"Date the customer sees now {new.isoformat()} (set by support: The mill" in shown
    assert f"Date first promised {old.isoformat()}" in shown
    # The other customer's line, and the variant's date, are as they were.
    assert db.session.get(BackorderLine, ada["allocated"]).eta_override is None


@pytest.mark.parametrize(
    "form, message",
    [
        ({"eta": "soon", "reason": "x"}, "Enter the new date as YYYY-MM-DD."),
        ({"eta": "2001-01-01", "reason": "x"}, "The new date is in the past."),
        ({"eta": "2099-01-01", "reason": " "}, "Give the reason the customer will read."),
        ({"eta": "2099-01-01", "reason": "x" * 501}, "at most 500 characters"),
    ],
)
def test_a_bad_date_or_reason_is_refused_and_nothing_changes(ada, client, form, message):
    answer = post(client, "eta", line_id=ada["open"], **form)
    assert answer.status_code == 422
    assert message in text_of(answer.text)
    assert steps(ada["open"], "eta_changed") == []
    assert db.session.get(BackorderLine, ada["open"]).eta_override is None


def test_a_line_is_cancelled_in_the_store_on_the_customers_behalf(ada, client):
    refused = post(client, "cancel", line_id=ada["open"])
    assert refused.status_code == 409
    assert "does not let the app cancel orders in the store" in text_of(refused.text)
    assert steps(ada["open"], "cancel_requested") == []

    shop = db.session.get(Shop, ada["shop"].id)
    shop.settings.customer_cancel_on_platform = True
    db.session.commit()
    answer = post(client, "cancel", line_id=ada["open"])
    assert answer.status_code == 303
    db.session.expire_all()
    line = db.session.get(BackorderLine, ada["open"])
    (asked,) = steps(line.id, "cancel_requested")
    assert (asked.cause, asked.staff_user) == ("support", "sandbox")
    assert steps(line.id, "cancel_done")
    # The sandbox store took the line off the order, and the ledger followed.
    assert line.status == BackorderStatus.CANCELLED and line.cancelled_quantity == 2
    order = db.session.scalars(select(SandboxOrder).order_by(SandboxOrder.id)).all()[1]
    assert order.current_quantity == 0  # the store's own order lost the line
    shown = text_of(client.get(answer.headers["Location"]).text)
    assert "Closed: shipped or cancelled (1)" in shown
    assert "Cancellation requested · 2 units · cause: support by sandbox" in shown
    assert "Cancelled in the store" in shown
    # Twice is refused: the line is closed.
    again = post(client, "cancel", line_id=ada["open"])
    assert again.status_code == 409


def test_an_internal_note_is_kept_with_who_wrote_it(ada, client):
    answer = post(client, "note", text="Called her: happy to wait.\nCall back on Friday.")
    assert answer.status_code == 303
    (note,) = db.session.scalars(select(CustomerNote)).all()
    assert (note.customer_email, note.staff_user) == (ADA, "sandbox")
    shown = text_of(client.get(answer.headers["Location"]).text)
    assert "Called her: happy to wait. Call back on Friday." in shown
    assert "Internal note by sandbox" in shown  # in the customer's timeline too
    long = post(client, "note", text="x" * 2001)
    assert long.status_code == 422 and "at most 2000 characters" in text_of(long.text)
    empty = post(client, "note", text="  ")
    assert empty.status_code == 422
    assert len(db.session.scalars(select(CustomerNote)).all()) == 1


def test_platform_staff_are_recorded_as_themselves(app, client):
    store = factories.bigcommerce_store(STORE, owner=OWNER)
    shirt = factories.product(
        store,
        "p1",
        "Linen Shirt",
        [{"platform_id": "v1", "sku": "LIN-M", "badge": ("backorder", "Soon", None)}],
    )
    line = factories.backorder_line(shirt.variants[0], "4001", email="bea@example.com")
    token = bigcommerce_session.issue(app.config["SECRET_KEY"], STORE, str(OWNER))
    base = f"/bigcommerce/app/{STORE}/desk/customer"
    shown = client.get(base, query_string={"email": "bea@example.com", "token": token})
    assert shown.status_code == 200 and "Order #4001" in text_of(shown.text)
    note = client.post(
        f"{base}/note", data={"email": "bea@example.com", "token": token, "text": "VIP"}
    )
    assert note.status_code == 303
    assert f"token={token}" in note.headers["Location"]
    eta = (utcnow() + timedelta(days=20)).date()
    changed = client.post(
        f"{base}/eta",
        data={
            "email": "bea@example.com",
            "token": token,
            "line_id": line.id,
            "eta": eta.isoformat(),
            "reason": "A new supplier",
        },
    )
    assert changed.status_code == 303
    (step,) = steps(line.id, "eta_changed")
    assert step.staff_user == f"bigcommerce:{OWNER}"
    # The line had no date before: the notice says "not set" and the new date.
    (notice,) = mails_to("bea@example.com")
    assert "Before: not set" in notice.text_body and "A new supplier" in notice.text_body
    assert db.session.scalars(select(CustomerNote)).one().staff_user == f"bigcommerce:{OWNER}"
    refused = client.post(
        f"{base}/cancel", data={"email": "bea@example.com", "token": token, "line_id": line.id}
    )
    assert refused.status_code == 409

    shopify = factories.shopify_shop(SHOPIFY)
    hat = factories.product(shopify, "sp1", "Hat", [{"platform_id": "sv1", "sku": "HAT"}])
    factories.backorder_line(hat.variants[0], "5001", email="cy@example.com")
    noted = client.post(
        "/shopify/app/desk/customer/note",
        data={
            "email": "cy@example.com",
            "shop": SHOPIFY,
            "id_token": session_token(SHOPIFY),
            "text": "Asked twice",
        },
    )
    assert noted.status_code == 303
    assert "/shopify/app/desk/customer?email=cy@example.com" in noted.headers["Location"]
    assert "id_token=" in noted.headers["Location"]
    cy_note = db.session.scalars(
        select(CustomerNote).where(CustomerNote.customer_email == "cy@example.com")
    ).one()
    assert cy_note.staff_user == "shopify:42"  # the session token's `sub`
    elsewhere = client.post(
        "/shopify/app/desk/customer/note",
        data={
            "email": "bea@example.com",
            "shop": SHOPIFY,
            "id_token": session_token(SHOPIFY),
            "text": "not here",
        },
    )
    assert elsewhere.status_code == 404  # the Shopify shop has no such customer
    assert len(db.session.scalars(select(CustomerNote)).all()) == 2  # Bea's and Cy's only


# --- in Chromium, with the mails arriving at a real SMTP server -------------------------------

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def smtp_live(smtp_app):
    server = make_server("127.0.0.1", 0, smtp_app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(timeout=5)


@pytest.mark.browser
def test_staff_resend_a_mail_and_cancel_a_line_for_the_customer_in_chromium(
    smtp_app, smtp, smtp_live
):
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    client = smtp_app.test_client()
    owner = factories.shop()
    owner.settings.email_quiet_minutes = 0
    owner.settings.customer_cancel_on_platform = True
    db.session.commit()
    shirts = factories.sandbox_product(
        owner,
        "Linen Shirt",
        [("Medium", "LIN-M", 0, "continue"), ("Large", "LIN-L", 0, "continue")],
    )
    place(client, shirts.variants[0].id, 1, ADA)
    place(client, shirts.variants[1].id, 2, ADA)

    def to_ada(subject_part: str) -> list:
        return [
            m for m in smtp.mailbox.messages if m["To"] == ADA and subject_part in str(m["Subject"])
        ]

    wait_until(lambda: len(to_ada("#1002")) == 1, timeout=10, what="the #1002 confirmation")
    subject = str(to_ada("#1002")[0]["Subject"])

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(5000)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        expect = playwright.expect
        ARTIFACTS.mkdir(exist_ok=True)

        page.goto(f"{smtp_live}/sandbox/desk?q={ADA}")
        page.get_by_role("link", name=ADA).click()
        expect(page.get_by_role("heading", name=ADA, level=1)).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "sandbox-desk-customer-1280.png"), full_page=True)

        # Resend the #1002 confirmation: a second copy arrives at the SMTP server.
        page.get_by_role("button", name=f"Resend “{subject}”").click()
        expect(page.get_by_role("status")).to_contain_text("The mail is queued to be sent again.")
        wait_until(lambda: len(to_ada("#1002")) == 2, timeout=10, what="the resent mail")
        first, again = to_ada("#1002")
        assert again.get_body(preferencelist=("plain",)).get_content() == (
            first.get_body(preferencelist=("plain",)).get_content()
        )

        # Cancel the #1002 line on her behalf: the sandbox store removes it, the ledger follows.
        line = page.locator("article.desk-line", has_text="Order #1002")
        line.get_by_role("button", name="Cancel this line for the customer").click()
        expect(page.get_by_role("status")).to_contain_text("The store is asked to cancel")
        closed = page.get_by_role("region", name="Closed: shipped or cancelled (1)")
        cancelled = closed.locator("article.desk-line", has_text="Order #1002")
        expect(cancelled).to_contain_text("Cancelled in the store")
        expect(cancelled).to_contain_text("cause: support by sandbox")
        expect(page.get_by_role("region", name="Mails to this customer")).to_contain_text(
            "(a resend)"
        )
        page.screenshot(
            path=str(ARTIFACTS / "sandbox-desk-customer-after-actions-1280.png"), full_page=True
        )
        browser.close()
        assert errors == [], "JavaScript errors on the page"


def test_a_variant_wide_date_move_leaves_a_line_support_dated_alone(ada, client):
    """Support told Ada her own date; when the variant's date moves later, Grace (same variant)
    is told the new date and Ada is not told a date that is not hers."""
    from plugin.services import customer_mails

    line = db.session.get(BackorderLine, ada["open"])
    own = line.promised_eta + timedelta(days=9)
    assert (
        post(client, "eta", line_id=line.id, eta=own.isoformat(), reason="Own date").status_code
        == 303
    )
    db.session.expire_all()  # what the request committed, as a new request would read it
    before = {m.id for m in db.session.scalars(select(OutboxMail))}
    old = line.promised_eta
    moved = customer_mails.after_eta_moves(
        db.session, ada["shop"], {line.variant_id: (old, old + timedelta(days=20))}
    )
    db.session.commit()
    new_mails = [m for m in db.session.scalars(select(OutboxMail)) if m.id not in before]
    assert [m.recipient for m in new_mails if m.kind == "eta_change"] == ["grace@example.com"]
    assert set(moved) == {m.id for m in new_mails}
    assert len(steps(line.id, "eta_changed")) == 1  # only support's own change
