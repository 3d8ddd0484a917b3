"""The Mail Order Rule part of customer mails: delay notices past the promised date (30 days
after the order where none was stated), consent to long or renewed delays, the signed cancel
link (used, expired and forged links refused and nothing changed), cancelling on the platform
where the shop allows it, and privacy requests covering the mails."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest
import responses
import time_machine
from sqlalchemy import func, select

from connectors.base import TokenCallbacks
from connectors.bigcommerce import connector as bc_connector
from connectors.shopify.connector import ShopifyConnector
from connectors.shopify.graphql import ShopifyGraphQL
from domain import events as ev
from plugin.extensions import db
from plugin.models import (
    BackorderLine,
    BackorderStatus,
    BackorderStep,
    OutboxMail,
    SandboxOrder,
    utcnow,
)
from plugin.services import compliance, customer_links
from plugin.services.delay_notices import run_shop
from tests import factories
from tests.bigcommerce_support import API, store_connector
from tests.shopify_webhook_helpers import ENDPOINT, SHOP, gql_answer, operation_of, sent

SECRET = "test-secret-key"  # tests/conftest.py base_env
APP_URL = "https://app.test"
ORDERED = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


def backordered(eta=None, email="ada@example.com", order_id="5001", shop=None):
    """A sandbox-platform shop's open line of 1 unit, ordered at ORDERED; the variant's badge
    (decided before the order) promised `eta`."""
    shop = shop or factories.shop(timezone="America/New_York")
    badge = ("backorder", "Backorder", eta) if eta else None
    product = factories.product(
        shop,
        f"p{order_id}",
        "Rain jacket",
        [{"platform_id": f"v{order_id}", "title": "Medium", "tracked": True, "badge": badge}],
    )
    variant = product.variants[0]
    if badge:
        from plugin.models import VariantBadge

        db.session.get(VariantBadge, variant.id).decided_at = ORDERED - timedelta(days=1)
        db.session.commit()
    return factories.backorder_line(variant, order_id, email=email, ordered_at=ORDERED)


def move_eta(line, eta, at: datetime) -> None:
    """The merchant or supplier moves the variant's ETA, as the badge engine records it."""
    from plugin.models import BadgeKind, BadgeTransition, VariantBadge

    badge = db.session.get(VariantBadge, line.variant_id)
    db.session.add(
        BadgeTransition(
            shop_id=line.shop_id,
            variant_id=line.variant_id,
            from_state=BadgeKind.BACKORDER,
            to_state=BadgeKind.BACKORDER,
            from_eta=badge.eta,
            to_eta=eta,
            cause="settings",
            created_at=at,
        )
    )
    badge.eta, badge.decided_at = eta, at
    db.session.commit()


def notices_run(line, at: datetime):
    with time_machine.travel(at, tick=False):
        shop = line.variant.product.shop if hasattr(line.variant.product, "shop") else None
        from plugin.models import Shop

        shop = db.session.get(Shop, line.shop_id)
        run = run_shop(db.session, shop, app_url=APP_URL, secret_key=SECRET)
        db.session.commit()
    db.session.expire_all()
    return run


def steps(line_id: int, kind: str | None = None) -> list[BackorderStep]:
    query = select(BackorderStep).where(BackorderStep.line_id == line_id)
    if kind:
        query = query.where(BackorderStep.kind == kind)
    return list(db.session.scalars(query.order_by(BackorderStep.id)))


def delay_mails(line_id: int) -> list[OutboxMail]:
    return list(
        db.session.scalars(
            select(OutboxMail)
            .where(OutboxMail.backorder_line_id == line_id, OutboxMail.kind == "delay_notice")
            .order_by(OutboxMail.id)
        )
    )


def link_in(mail: OutboxMail, path: str) -> str:
    found = re.search(rf"{re.escape(APP_URL)}(/orders/{path}/[A-Za-z0-9_.\-]+)", mail.text_body)
    assert found, mail.text_body
    return found.group(1)


# --- delay notices --------------------------------------------------------------------------


def test_no_date_stated_the_notice_goes_out_after_30_days_and_asks_for_consent(app):
    line = backordered(eta=None)
    # 30 days after the order (in the shop's zone) is still on time.
    assert notices_run(line, ORDERED + timedelta(days=30)).notices == 0
    assert delay_mails(line.id) == []

    run = notices_run(line, ORDERED + timedelta(days=31))
    assert run.notices == 1
    [mail] = delay_mails(line.id)
    assert mail.idempotency_key == f"delay:{line.id}:1"
    assert mail.recipient == "ada@example.com"
    assert link_in(mail, "cancel") and link_in(mail, "wait")  # indefinite: consent asked
    [step] = steps(line.id, "delay_notified")
    assert json.loads(step.note)["consent"] is True
    assert json.loads(step.note)["revised"] is None
    assert step.cause == "mail_order_rule"

    # The hourly job runs again the same day and the next: nothing more is sent.
    assert notices_run(line, ORDERED + timedelta(days=31, hours=1)).notices == 0
    assert notices_run(line, ORDERED + timedelta(days=40)).notices == 0
    assert len(delay_mails(line.id)) == 1


def test_without_consent_by_the_deadline_the_line_is_owed_a_cancellation(app, client):
    line = backordered(eta=None)
    notices_run(line, ORDERED + timedelta(days=31))
    # An indefinite delay waits 30 days for consent.
    assert notices_run(line, ORDERED + timedelta(days=61)).flagged == 0
    assert notices_run(line, ORDERED + timedelta(days=62)).flagged == 1
    [owed] = steps(line.id, "cancel_owed")
    assert owed.cause == "mail_order_rule"
    assert notices_run(line, ORDERED + timedelta(days=70)).flagged == 0  # flagged once

    # The consent link now says it is too late, and records nothing.
    wait = link_in(delay_mails(line.id)[0], "wait")
    before = len(steps(line.id))
    with time_machine.travel(ORDERED + timedelta(days=63), tick=False):
        page = client.post(wait)
    assert page.status_code == 409
    assert "replaced" in page.text and "Nothing was changed" in page.text
    assert len(steps(line.id)) == before


def test_a_short_definite_delay_goes_ahead_on_silence_and_a_second_asks_for_consent(app, client):
    promised = ORDERED.date() + timedelta(days=10)
    line = backordered(eta=promised)
    # The supplier moves the date 20 days on: a definite delay of 30 days or less.
    move_eta(line, promised + timedelta(days=20), ORDERED + timedelta(days=5))
    assert notices_run(line, datetime(2026, 3, 12, 20, tzinfo=UTC)).notices == 0  # on its date
    assert notices_run(line, datetime(2026, 3, 13, 17, tzinfo=UTC)).notices == 1
    first = json.loads(steps(line.id, "delay_notified")[0].note)
    assert first == {"n": 1, "revised": "2026-04-01", "consent": False, "due": None}
    assert "/orders/wait/" not in delay_mails(line.id)[0].text_body

    # Silence was consent; the revised date passes too, with a new date: consent is asked.
    move_eta(line, promised + timedelta(days=40), ORDERED + timedelta(days=25))
    assert notices_run(line, datetime(2026, 4, 1, 20, tzinfo=UTC)).notices == 0
    assert notices_run(line, datetime(2026, 4, 2, 17, tzinfo=UTC)).notices == 1
    second = json.loads(steps(line.id, "delay_notified")[1].note)
    assert second == {"n": 2, "revised": "2026-04-21", "consent": True, "due": "2026-04-21"}
    mail = delay_mails(line.id)[1]
    assert mail.idempotency_key == f"delay:{line.id}:2"

    # "I'll wait": the page asks, the POST records consent once.
    wait = link_in(mail, "wait")
    with time_machine.travel(datetime(2026, 4, 3, tzinfo=UTC), tick=False):
        form = client.get(wait)
        assert form.status_code == 200 and "I'll wait" in form.text
        assert steps(line.id, "consented") == []
        done = client.post(wait)
        assert done.status_code == 200 and "Thank you" in done.text
        again = client.post(wait)
    assert again.status_code == 409 and "already been used" in again.text
    [consented] = steps(line.id, "consented")
    assert (consented.cause, consented.note) == ("customer", "2")
    # Consent given: no flag when its date passes (a third notice follows instead).
    assert notices_run(line, datetime(2026, 4, 20, tzinfo=UTC)).flagged == 0


def test_a_delay_over_30_days_needs_consent_even_the_first_time(app):
    promised = ORDERED.date() + timedelta(days=5)
    line = backordered(eta=promised)
    move_eta(line, promised + timedelta(days=31), ORDERED + timedelta(days=1))
    notices_run(line, datetime(2026, 3, 9, 12, tzinfo=UTC))
    assert json.loads(steps(line.id, "delay_notified")[0].note)["consent"] is True


def test_a_line_without_an_address_is_flagged_instead(app):
    line = backordered(eta=None, email=None)
    run = notices_run(line, ORDERED + timedelta(days=31))
    assert (run.notices, run.flagged) == (0, 1)
    assert delay_mails(line.id) == []
    assert "no address" in steps(line.id, "cancel_owed")[0].note


# --- the cancel link ------------------------------------------------------------------------


def cancel_path(line_id: int, secret: str = SECRET) -> str:
    return "/orders/cancel/" + customer_links.cancel_token(secret, line_id)


def test_the_cancel_link_asks_then_records_the_request_and_tells_the_merchant(app, client):
    line = backordered(eta=None)
    shop = line.order.order_line if False else None  # noqa: F841 - readability only
    from plugin.models import Shop

    owner = db.session.get(Shop, line.shop_id)
    owner.contact_email = "owner@shop.example"
    db.session.commit()

    page = client.get(cancel_path(line.id))
    assert page.status_code == 200
    assert "Rain jacket (Medium)" in page.text and 'value="order"' in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert steps(line.id, "cancel_requested") == []  # opening the link changes nothing

    unchosen = client.post(cancel_path(line.id), data={})
    assert unchosen.status_code == 400 and "Please choose" in unchosen.text
    assert steps(line.id, "cancel_requested") == []

    done = client.post(cancel_path(line.id), data={"scope": "line"})
    assert done.status_code == 200 and "Cancellation requested" in done.text
    [request] = steps(line.id, "cancel_requested")
    assert (request.cause, request.note, request.quantity) == ("customer", "line", 1)
    [told] = db.session.scalars(
        select(OutboxMail).where(OutboxMail.kind == "merchant_cancel_request")
    ).all()
    assert told.recipient == "owner@shop.example"
    assert customer_links.merchant_flags(db.session.get(BackorderLine, line.id)) == [
        ("Customer asked to cancel the line", "warning")
    ]
    # Not allowed to cancel on the platform by default: the ledger waits for the merchant.
    assert db.session.get(BackorderLine, line.id).status == BackorderStatus.OPEN

    # Used: explained, nothing changed.
    for again in (client.get(cancel_path(line.id)), client.post(cancel_path(line.id))):
        assert again.status_code == 409 and "already been used" in again.text
    assert len(steps(line.id, "cancel_requested")) == 1


def test_an_expired_cancel_link_changes_nothing(app, client):
    line = backordered(eta=None)
    with time_machine.travel(utcnow(), tick=False):
        path = cancel_path(line.id)
    with time_machine.travel(utcnow() + timedelta(days=46), tick=False):
        for response in (client.get(path), client.post(path, data={"scope": "line"})):
            assert response.status_code == 410
            assert "expired" in response.text and "Nothing was changed" in response.text
    assert steps(line.id, "cancel_requested") == []


@pytest.mark.parametrize(
    "forge",
    [
        lambda line_id: cancel_path(line_id, secret="someone-elses-key"),
        lambda line_id: cancel_path(line_id)[:-3] + "abc",
        # A valid consent token is not a cancel token (salts differ).
        lambda line_id: "/orders/cancel/" + customer_links.consent_token(SECRET, line_id, 1),
        lambda line_id: cancel_path(line_id + 999),
    ],
)
def test_a_forged_cancel_link_changes_nothing(app, client, forge):
    line = backordered(eta=None)
    response = client.post(forge(line.id), data={"scope": "order"})
    assert response.status_code == 404 and "not valid" in response.text
    assert steps(line.id) == []
    assert db.session.scalar(select(func.count()).select_from(OutboxMail)) == 0


def test_the_mail_carries_a_working_cancel_link(app, client):
    line = backordered(eta=None)
    notices_run(line, ORDERED + timedelta(days=31))
    path = link_in(delay_mails(line.id)[0], "cancel")
    with time_machine.travel(ORDERED + timedelta(days=32), tick=False):
        assert client.post(path, data={"scope": "order"}).status_code == 200
    assert steps(line.id, "cancel_requested")[0].note == "order"


# --- cancelling on the platform --------------------------------------------------------------


def allow_platform_cancel(shop) -> None:
    """The shop lets the app cancel on the platform when a customer asks."""
    shop.settings.customer_cancel_on_platform = True
    db.session.commit()


def sandbox_backorder(units: int = 2):
    shop = factories.shop()
    product = factories.sandbox_product(shop, "Tee", [("Medium", "TEE-M", 0, "continue")])
    order, hooks = factories.sandbox_order(shop, product.variants[0].id, units, "ada@example.com")
    from plugin.services import sandbox_store

    assert sandbox_store.deliver(shop, hooks) == [200] * len(hooks)
    db.session.expire_all()
    line = db.session.scalars(select(BackorderLine)).one()
    assert line.open_quantity == units
    return shop, order, line


@pytest.mark.parametrize("scope", ["line", "order"])
def test_the_sandbox_store_cancels_when_the_shop_allows_it(app, client, scope):
    shop, order, line = sandbox_backorder()
    allow_platform_cancel(shop)
    response = client.post(cancel_path(line.id), data={"scope": scope})
    assert response.status_code == 200 and "cancelling it now" in response.text
    db.session.expire_all()
    store_order = db.session.get(SandboxOrder, order.id)
    if scope == "order":
        assert store_order.cancelled_at is not None
    else:
        assert store_order.current_quantity == 0
    line = db.session.get(BackorderLine, line.id)
    assert line.status == BackorderStatus.CANCELLED and line.cancelled_quantity == 2
    kinds = [s.kind for s in steps(line.id)]
    assert kinds[-3:] == ["cancel_requested", "cancel_done", "cancelled"]
    assert steps(line.id, "cancel_done")[0].cause == "customer"
    # The page now says the item is closed.
    assert client.get(cancel_path(line.id)).status_code == 409


ORDER_ID, LINE_ID = "820982911946154508", "466157049"


def shopify_connector() -> ShopifyConnector:
    tokens = TokenCallbacks(access_token=lambda: "shpat_test")
    return ShopifyConnector(ShopifyGraphQL(SHOP, tokens, sleep=lambda s: None, buckets={}))


@responses.activate
def test_shopify_removes_a_line_by_an_order_edit():
    edit = "gid://shopify/CalculatedOrder/607673084"
    item = f"gid://shopify/CalculatedLineItem/{LINE_ID}"
    answers = [
        {
            "orderEditBegin": {
                "calculatedOrder": {
                    "id": edit,
                    "lineItems": {
                        "nodes": [
                            {"id": "gid://shopify/CalculatedLineItem/1", "quantity": 1},
                            {"id": item, "quantity": 2, "editableQuantity": 2},
                        ]
                    },
                },
                "userErrors": [],
            }
        },
        {
            "orderEditSetQuantity": {
                "calculatedLineItem": {"id": item, "quantity": 0},
                "userErrors": [],
            }
        },
        {
            "orderEditCommit": {
                "order": {"id": f"gid://shopify/Order/{ORDER_ID}"},
                "userErrors": [],
            }
        },
    ]
    for data in answers:
        responses.post(ENDPOINT, json=gql_answer(data))
    note = shopify_connector().cancel_line(ORDER_ID, LINE_ID)
    assert "refund" in note
    calls = responses.calls
    assert [operation_of(c) for c in calls] == [
        "BackorderOrderEditBegin",
        "BackorderOrderEditSetQuantity",
        "BackorderOrderEditCommit",
    ]
    assert sent(calls[0])["variables"] == {"id": f"gid://shopify/Order/{ORDER_ID}"}
    assert sent(calls[1])["variables"] == {"id": edit, "lineItemId": item}
    assert "quantity: 0, restock: true" in sent(calls[1])["query"]
    assert sent(calls[2])["variables"]["id"] == edit


@responses.activate
def test_shopify_cancels_the_whole_order_with_a_refund():
    responses.post(
        ENDPOINT,
        json=gql_answer(
            {
                "orderCancel": {
                    "job": {"id": "gid://shopify/Job/1", "done": False},
                    "orderCancelUserErrors": [],
                }
            }
        ),
    )
    shopify_connector().cancel_order(ORDER_ID)
    [call] = responses.calls
    body = sent(call)
    assert operation_of(call) == "BackorderOrderCancel"
    assert body["variables"]["orderId"] == f"gid://shopify/Order/{ORDER_ID}"
    for argument in ("reason: CUSTOMER", "refund: true", "restock: true"):
        assert argument in body["query"]


@responses.activate
def test_shopify_refusing_the_cancel_is_an_error():
    from connectors.base import ConnectorError

    responses.post(
        ENDPOINT,
        json=gql_answer(
            {
                "orderCancel": {
                    "job": None,
                    "orderCancelUserErrors": [
                        {"field": ["orderId"], "message": "Cannot cancel", "code": "INVALID"}
                    ],
                }
            }
        ),
    )
    with pytest.raises(ConnectorError, match="Cannot cancel"):
        shopify_connector().cancel_order(ORDER_ID)


@responses.activate
def test_bigcommerce_cancels_through_the_v2_order_update():
    bc_connector._clients.clear()
    responses.put(f"{API}/v2/orders/118", json={"id": 118, "status_id": 5})
    responses.put(f"{API}/v2/orders/119", json={"id": 119})
    connector = store_connector()
    connector.cancel_order("118")
    connector.cancel_line("119", "27")
    order_call, line_call = responses.calls
    assert json.loads(order_call.request.body) == {"status_id": 5}
    assert json.loads(line_call.request.body) == {"products": [{"id": 27, "quantity": 0}]}


def test_a_platform_refusal_is_recorded_and_flagged(app, client):
    shop, order, line = sandbox_backorder()
    allow_platform_cancel(shop)
    from plugin.services import sandbox_store

    # The order shipped in the store before the customer's click reached the app.
    store = db.session.get(SandboxOrder, order.id)
    store.shipped_quantity = 2
    db.session.commit()
    assert client.post(cancel_path(line.id), data={"scope": "line"}).status_code == 200
    db.session.expire_all()
    [failed] = steps(line.id, "cancel_failed")
    assert "SandboxError" in failed.note
    assert customer_links.merchant_flags(db.session.get(BackorderLine, line.id))[0][1] == "danger"
    assert sandbox_store  # imported for the store's own error type


# --- privacy requests -------------------------------------------------------------------------


def test_data_requests_list_the_mails_and_redaction_deletes_them(app):
    line = backordered(eta=None)
    other = backordered(eta=None, email="grace@example.com", order_id="5002")
    notices_run(line, ORDERED + timedelta(days=31))
    notices_run(other, ORDERED + timedelta(days=31))
    from plugin.models import Shop

    shop = db.session.get(Shop, line.shop_id)
    report = compliance.customer_data(db.session, shop, "ada@example.com", ())
    [mail] = report["mails"]
    assert mail["kind"] == "delay_notice" and mail["to"] == "ada@example.com"
    assert "/orders/cancel/" in mail["text"]

    outcome = compliance.handle(
        db.session,
        shop,
        ev.CustomerRedact(
            customer_email="ada@example.com",
            order_ids=("5001",),
            occurred_at=utcnow(),
        ),
        current_event_id=0,
    )
    db.session.commit()
    assert "1 mail(s) deleted" in outcome
    left = db.session.scalars(select(OutboxMail.recipient)).all()
    assert left == ["grace@example.com"]
