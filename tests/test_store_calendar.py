"""ETAs in the shop's own zone and calendar: weekends, its country's holidays and the dates the
merchant closed, around midnight UTC (frozen clock)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine

from domain.badges import BadgeKind
from domain.events import StoreFacts
from plugin.badge_engine import add_business_days
from plugin.extensions import db
from plugin.services.badging import refresh_badge
from plugin.services.reconcile import apply_store_facts
from plugin.services.store_calendar import closed_dates, public_holidays
from tests import factories

# 23:30 UTC on Wednesday 23 December 2026: still the 23rd in Los Angeles (15:30), already
# Thursday the 24th in Berlin (00:30).
NEAR_MIDNIGHT_UTC = datetime(2026, 12, 23, 23, 30, tzinfo=UTC)


def sold_out_variant(shop):
    # Selling past zero automatically: a BigCommerce store can only do it with its native
    # backorders on.
    shop.native_backorders = True
    shop.settings.auto_backorder = True
    shop.settings.business_days = True
    shop.settings.default_lead_days = 1
    db.session.commit()
    (variant,) = factories.product(
        shop, "1", "Tee", [{"platform_id": "11", "levels": {"1": 0}}]
    ).variants
    return variant


@pytest.mark.parametrize(
    ("make", "facts", "eta"),
    [
        # Los Angeles: the 23rd; one business day on is Thursday the 24th (no US holiday).
        (
            factories.shopify_shop,
            StoreFacts(timezone="America/Los_Angeles", locale="en", country="US"),
            date(2026, 12, 24),
        ),
        # Berlin: the 24th; the 25th and 26th are German holidays, then the weekend.
        (
            factories.bigcommerce_store,
            StoreFacts(timezone="Europe/Berlin", locale="de", country="DE"),
            date(2026, 12, 28),
        ),
    ],
)
def test_each_store_gets_etas_in_its_own_zone_skipping_its_holidays(app, make, facts, eta):
    shop = make()
    apply_store_facts(shop, facts)  # what install and reconciliation read from the platform
    variant = sold_out_variant(shop)
    with time_machine.travel(NEAR_MIDNIGHT_UTC, tick=False):
        badge = refresh_badge(db.session, shop, variant, cause="test")
    assert (shop.timezone, shop.country) == (facts.timezone, facts.country)
    assert badge.state == BadgeKind.BACKORDER
    assert badge.eta == eta


def test_dates_the_merchant_closed_are_skipped_too(app):
    shop = factories.bigcommerce_store()
    apply_store_facts(shop, StoreFacts(timezone="Europe/Berlin", country="DE"))
    shop.settings.closed_dates = ["2026-12-28", "2026-12-29"]
    variant = sold_out_variant(shop)
    with time_machine.travel(NEAR_MIDNIGHT_UTC, tick=False):
        badge = refresh_badge(db.session, shop, variant, cause="test")
    assert badge.eta == date(2026, 12, 30)


def test_a_fixed_eta_in_the_past_is_flagged_not_silently_replaced(app, client):
    shop = factories.shop()
    variant = sold_out_variant(shop)
    variant.eta_override = date(2026, 12, 1)
    db.session.commit()
    with time_machine.travel(NEAR_MIDNIGHT_UTC, tick=False):
        badge = refresh_badge(db.session, shop, variant, cause="test")
        page = client.get("/sandbox/variants").get_data(as_text=True)
    assert badge.eta == date(2026, 12, 24)  # shoppers are not promised a date gone by
    assert "the fixed ETA 2026-12-01 has passed" in badge.reason
    assert "This date has passed: shoppers see the lead time instead." in page


def test_store_calendar_pieces():
    assert date(2026, 12, 25) in public_holidays("US", 2026)
    assert date(2026, 12, 26) in public_holidays("DE", 2026)
    assert public_holidays("ZZ", 2026) == frozenset()  # a country the package does not know
    friday = date(2026, 12, 4)
    assert add_business_days(friday, 1) == date(2026, 12, 7)
    assert add_business_days(friday, 1, frozenset({date(2026, 12, 7)})) == date(2026, 12, 8)


def test_an_unknown_zone_from_the_platform_is_not_taken(app):
    shop = factories.shop(timezone="Europe/Paris")
    apply_store_facts(shop, StoreFacts(timezone="Mars/Olympus_Mons", country="FR"))
    assert shop.timezone == "Europe/Paris"
    assert date(2026, 7, 14) in closed_dates(shop, date(2026, 1, 1))
