"""The support sections of the admin pages show times in the shop's own zone, named ("CET"),
not in UTC; the ISO moment stays in a <time datetime> for machines."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from sqlalchemy import select

from plugin.extensions import db
from plugin.models import (
    BadgeKind,
    BadgeTransition,
    DataRequestReport,
    InboxStatus,
    Platform,
    Variant,
    WebhookEvent,
)
from plugin.services.shops import find_shop
from tests import factories
from tests.bc_callback_helpers import FakeStore, load_jwt
from tests.shopify_install_helpers import session_token

SHOP = "paris-shop.myshopify.com"
STORE = "p4r1s00"
OWNER = 7654321
CHANGED = datetime(2026, 11, 30, 13, 5, tzinfo=UTC)  # winter: Paris is UTC+1 (CET)
RECEIVED = datetime(2026, 11, 30, 16, 45, tzinfo=UTC)
ASKED = datetime(2026, 7, 1, 10, 0, tzinfo=UTC)  # summer: UTC+2 (CEST)


def _history(shop) -> None:
    """One badge change, one webhook received and one privacy request, at known moments."""
    shop.timezone = "Europe/Paris"
    factories.product(
        shop, "p1", "Linen shirt", [{"platform_id": "v1", "title": "M", "sku": "LS-M"}]
    )
    variant = db.session.scalars(select(Variant).where(Variant.shop_id == shop.id)).one()
    db.session.add_all(
        [
            BadgeTransition(
                shop_id=shop.id,
                variant_id=variant.id,
                from_state=BadgeKind.IN_STOCK,
                to_state=BadgeKind.BACKORDER,
                to_eta=date(2026, 12, 14),
                label="Backorder, ships by Mon, December 14, 2026",
                cause="webhook",
                created_at=CHANGED,
            ),
            WebhookEvent(
                platform=shop.platform.value,
                shop_id=shop.id,
                shop_domain=shop.domain,
                topic="products/update",
                event_id="evt-1",
                received_at=RECEIVED,
                body=b"{}",
                status=InboxStatus.PROCESSED,
            ),
            DataRequestReport(
                shop_id=shop.id,
                customer_email="claire@example.fr",
                requested_at=ASKED,
                report={"orders": [], "backorder_lines": []},
            ),
        ]
    )
    db.session.commit()


def _cells(page: str) -> list[tuple[str, str]]:
    return re.findall(r'<time datetime="([^"]+)">([^<]*)</time>', page)


def test_shopify_support_json_gives_local_times_next_to_the_iso_ones(app, client):
    shop = factories.shopify_shop(SHOP)
    _history(shop)

    body = client.get(
        "/shopify/api/support", headers={"Authorization": f"Bearer {session_token(SHOP)}"}
    ).json

    change = body["transitions"][0]
    assert (change["at"], change["at_local"]) == (CHANGED.isoformat(), "2026-11-30 14:05 CET")
    inbox = body["inbox"]
    assert inbox["last_received_at"] == RECEIVED.isoformat()
    assert inbox["last_received_at_local"] == "2026-11-30 17:45 CET"
    asked = body["data_requests"][0]
    assert asked["requested_at_local"] == "2026-07-01 12:00 CEST"


def test_shopify_admin_page_shows_the_shops_zone_not_utc(app, client):
    shop = factories.shopify_shop(SHOP)
    _history(shop)

    with responses.RequestsMock():  # opening the page asks Shopify nothing
        response = client.get(f"/shopify/app/support?shop={SHOP}&id_token={session_token(SHOP)}")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    support = page[page.index('id="support"') :]
    assert "UTC" not in support
    assert _cells(support) == [
        (CHANGED.isoformat(), "2026-11-30 14:05 CET"),
        (RECEIVED.isoformat(), "2026-11-30 17:45 CET"),
        (ASKED.isoformat(), "2026-07-01 12:00 CEST"),
    ]
    assert "<th>When</th>" in support and "<th>Asked</th>" in support


@pytest.fixture
def bigcommerce_token(client):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeStore(STORE).install(rsps)
        factories.bigcommerce_store(
            STORE, token=f"token-{STORE}", webhook_secret=f"secret-{STORE}", owner=OWNER
        )
        response = client.get(
            "/bigcommerce/load",
            query_string={"signed_payload_jwt": load_jwt(STORE, user_id=OWNER, owner_id=OWNER)},
        )
        assert response.status_code == 302
        yield parse_qs(urlsplit(response.headers["Location"]).query)["token"][0]


def test_bigcommerce_support_page_shows_the_shops_zone_not_utc(app, client, bigcommerce_token):
    shop = find_shop(db.session, Platform.BIGCOMMERCE, STORE)
    _history(shop)

    response = client.get(f"/bigcommerce/app/{STORE}/support?token={bigcommerce_token}")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "(UTC)" not in page
    registered, *rest = _cells(page)
    assert rest == [
        (ASKED.isoformat(), "2026-07-01 12:00 CEST"),
        (CHANGED.isoformat(), "2026-11-30 14:05 CET"),
    ]
    # When the store's webhooks were last checked: in the shop's zone too, not an ISO string.
    assert registered[0] == shop.registered_at.isoformat()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d CET", registered[1])


def test_a_shop_in_utc_still_reads_its_zone_by_name(app, client):
    shop = factories.shopify_shop(SHOP)
    _history(shop)
    shop.timezone = "UTC"
    db.session.commit()
    body = client.get(
        "/shopify/api/support", headers={"Authorization": f"Bearer {session_token(SHOP)}"}
    ).json
    assert body["transitions"][0]["at_local"] == "2026-11-30 13:05 UTC"
