"""The badge decision on its own: rules from the issue, and invariants under hypothesis."""

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from plugin.badge_engine import (
    BadgeRules,
    InventorySnapshot,
    VariantOverrides,
    add_business_days,
    decide_badge,
)
from plugin.models import BadgeKind

TODAY = date(2026, 11, 23)  # a Monday


def decide(available=0, past_zero=True, units=0, limit=None, eta=None, lead=None, **rules):
    return decide_badge(
        BadgeRules(**rules),
        InventorySnapshot(available=available, sells_past_zero=past_zero),
        VariantOverrides(eta=eta, lead_days=lead, backorder_limit=limit),
        units,
        TODAY,
    )


def test_stock_on_hand_is_in_stock():
    badge = decide(available=3)
    assert badge.state is BadgeKind.IN_STOCK
    assert badge.label == "In stock"
    assert badge.eta is None


def test_sold_out_and_selling_past_zero_is_backorder_with_default_lead_time():
    badge = decide(available=0, default_lead_days=14)
    assert badge.state is BadgeKind.BACKORDER
    assert badge.eta == date(2026, 12, 7)
    assert badge.label == "Backorder, ships by 2026-12-07"


def test_variant_lead_time_beats_store_default():
    assert decide(lead=3, default_lead_days=14).eta == date(2026, 11, 26)


def test_explicit_eta_wins_over_lead_time():
    assert decide(eta=date(2027, 1, 15), lead=3).eta == date(2027, 1, 15)


def test_past_explicit_eta_falls_back_to_lead_time():
    assert decide(eta=date(2026, 11, 1), default_lead_days=7).eta == date(2026, 11, 30)


def test_business_days_skip_weekends():
    # Monday + 5 business days = next Monday; + 6 = next Tuesday.
    assert decide(default_lead_days=5, business_days=True).eta == date(2026, 11, 30)
    assert decide(default_lead_days=6, business_days=True).eta == date(2026, 12, 1)
    assert add_business_days(date(2026, 11, 27), 1) == date(2026, 11, 30)  # Fri → Mon


def test_not_sold_past_zero_is_out_of_stock():
    badge = decide(available=0, past_zero=False)
    assert badge.state is BadgeKind.OUT_OF_STOCK
    assert badge.label == "Out of stock"


def test_store_auto_backorder_overrides_platform_policy_and_asks_to_enforce_it():
    badge = decide(available=0, past_zero=False, auto_backorder=True)
    assert badge.state is BadgeKind.BACKORDER
    assert badge.enforced_policy == "continue"


def test_limit_reached_is_out_of_stock_and_stops_selling():
    badge = decide(available=-5, units=5, limit=5)
    assert badge.state is BadgeKind.OUT_OF_STOCK
    assert "limit" in badge.reason
    assert badge.enforced_policy == "deny"


def test_under_the_limit_still_backorders():
    assert decide(available=-4, units=4, limit=5).state is BadgeKind.BACKORDER


def test_app_switched_off_shows_nothing():
    badge = decide(available=5, enabled=False)
    assert badge.state is BadgeKind.HIDDEN
    assert badge.label == ""


def test_untracked_inventory_is_always_in_stock():
    badge = decide_badge(
        BadgeRules(), InventorySnapshot(available=0, tracked=False), VariantOverrides(), 0, TODAY
    )
    assert badge.state is BadgeKind.IN_STOCK


def test_label_gets_the_formatted_eta():
    badge = decide_badge(
        BadgeRules(label_backorder="Pre-order: {eta}!"),
        InventorySnapshot(available=0, sells_past_zero=True),
        VariantOverrides(),
        0,
        TODAY,
        format_eta=lambda d: d.strftime("%d/%m"),
    )
    assert badge.label == "Pre-order: 07/12!"


inputs = st.fixed_dictionaries(
    {
        "rules": st.builds(
            BadgeRules,
            enabled=st.booleans(),
            auto_backorder=st.booleans(),
            default_lead_days=st.integers(-10, 400),
            business_days=st.booleans(),
        ),
        "inventory": st.builds(
            InventorySnapshot,
            available=st.integers(-1000, 1000),
            sells_past_zero=st.booleans(),
            tracked=st.booleans(),
        ),
        "overrides": st.builds(
            VariantOverrides,
            eta=st.none() | st.dates(TODAY - timedelta(days=400), TODAY + timedelta(days=400)),
            lead_days=st.none() | st.integers(-10, 400),
            backorder_limit=st.none() | st.integers(0, 1000),
        ),
        "units": st.integers(0, 2000),
        "today": st.dates(date(2020, 1, 1), date(2035, 12, 31)),
    }
)


@given(inputs)
def test_never_backorders_past_the_limit(case):
    badge = decide_badge(
        case["rules"], case["inventory"], case["overrides"], case["units"], case["today"]
    )
    limit = case["overrides"].backorder_limit
    if badge.state is BadgeKind.BACKORDER and limit is not None:
        assert case["units"] < limit


@given(inputs)
def test_eta_is_never_before_today_and_only_on_backorder(case):
    badge = decide_badge(
        case["rules"], case["inventory"], case["overrides"], case["units"], case["today"]
    )
    if badge.state is BadgeKind.BACKORDER:
        assert badge.eta is not None
        assert badge.eta >= case["today"]
    else:
        assert badge.eta is None


@given(inputs)
def test_stock_on_hand_never_shows_backorder_or_out_of_stock(case):
    badge = decide_badge(
        case["rules"], case["inventory"], case["overrides"], case["units"], case["today"]
    )
    if case["rules"].enabled and case["inventory"].available > 0:
        assert badge.state is BadgeKind.IN_STOCK
