"""CSV export and import of per-variant ETAs, lead times and limits (plugin/services/variant_csv):
a file with any bad row is refused whole with each bad line and why; a good one is checked
first (nothing written), then applied all at once, re-deciding only the variants it changes.
One store's file never reaches another store's variants."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from plugin.extensions import db
from plugin.models import BadgeTransition, Variant, VariantBadge
from plugin.services import variant_csv
from tests import factories

MINE = "mine-csv.myshopify.com"
THEIRS = "theirs-csv.myshopify.com"
HEADER = "variant_id,sku,product,variant,eta,lead_days,backorder_limit\n"


@pytest.fixture(autouse=True)
def pushes(monkeypatch) -> list[int]:
    """Shops a badge push was scheduled for (the push itself is tested elsewhere)."""
    scheduled: list[int] = []
    monkeypatch.setattr("plugin.jobs.schedule_push", scheduled.append)
    return scheduled


def catalogue(shop, product_id="10", title="Linen shirt"):
    """Small (on backorder, no stock), Large (in stock), XL (in stock, but its stored badge is
    stale: anything re-deciding it would log a transition) and a formula-like SKU."""
    made = factories.product(
        shop,
        product_id,
        title,
        variants=[
            {
                "platform_id": f"{product_id}1",
                "title": "Small",
                "sku": "LIN-S",
                "sells_past_zero": True,
                "badge": ("backorder", "Backorder", None),
            },
            {
                "platform_id": f"{product_id}2",
                "title": "Large",
                "sku": "LIN-L",
                "levels": {"loc-1": 4},
                "lead_days_override": 9,
                "badge": ("in_stock", "In stock", None),
            },
            {
                "platform_id": f"{product_id}3",
                "title": "XL",
                "sku": "=LIN-XL",
                "levels": {"loc-1": 2},
                "backorder_limit": 3,
                "badge": ("out_of_stock", "Sold out long ago", None),
            },
        ],
    )
    return made.variants


def rows_of(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"))))


def values(variant: Variant) -> tuple:
    db.session.refresh(variant)
    return (variant.eta_override, variant.lead_days_override, variant.backorder_limit)


def transitions(variant: Variant | None = None) -> int:
    query = select(func.count(BadgeTransition.id)).where(BadgeTransition.cause == "csv import")
    if variant is not None:
        query = query.where(BadgeTransition.variant_id == variant.id)
    return db.session.scalar(query)


def test_the_export_lists_every_variant_and_imports_back_unchanged(app):
    shop = factories.shopify_shop(MINE)
    small, large, xl = catalogue(shop)
    eta = factories.today_plus(20)
    small.eta_override = eta
    db.session.commit()

    text = variant_csv.export(db.session, shop)
    assert text.startswith("\ufeff")  # spreadsheets read it as UTF-8
    assert rows_of(text) == [
        list(variant_csv.COLUMNS),
        ["101", "LIN-S", "Linen shirt", "Small", eta.isoformat(), "", ""],
        ["102", "LIN-L", "Linen shirt", "Large", "", "9", ""],
        # A cell a spreadsheet would run as a formula is kept as text.
        ["103", "'=LIN-XL", "Linen shirt", "XL", "", "", "3"],
    ]
    plan = variant_csv.check(db.session, shop, text.encode("utf-8"))
    assert plan.ok and plan.rows == 3 and plan.changes == []


def test_a_file_with_bad_rows_is_refused_whole_with_every_bad_line(app):
    shop = factories.shopify_shop(MINE)
    small, large, xl = catalogue(shop)
    factories.product(shop, "20", "Twin", variants=[{"platform_id": "201", "sku": "TWIN"}])
    factories.product(shop, "21", "Twin", variants=[{"platform_id": "211", "sku": "TWIN"}])
    past = factories.today_plus(-3).isoformat()
    text = (
        HEADER
        + f"101,LIN-S,,,{factories.today_plus(5)},,\n"  # 2: good
        + "999,,,,,,\n"  # 3: unknown id
        + ",NOPE,,,,,\n"  # 4: unknown SKU
        + ",TWIN,,,,,\n"  # 5: SKU of two variants
        + "102,,,,24/12/2026,,\n"  # 6: not an ISO date
        + f"201,,,,{past},,\n"  # 7: in the past
        + "211,,,,,,2000000\n"  # 8: out of range
        + "101,,,,,,\n"  # 9: Small again
        + "103,'=LIN-XL\n"  # 10: wrong cell count
        + "103,,,,,ten,\n"  # 11: not a number
        + "101,LIN-L,,,,,\n"  # 12: id and SKU disagree
    )
    plan = variant_csv.check(db.session, shop, text)
    assert not plan.ok and plan.changes == []
    assert [line for line, _ in plan.errors] == [3, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    reasons = dict(plan.errors)
    assert "No variant with id '999'" in reasons[3]
    assert "No variant with SKU 'NOPE'" in reasons[4]
    assert "matches 2 variants" in reasons[5]
    assert "not a date" in reasons[6]
    assert "in the past" in reasons[7]
    assert "between 0 and 1000000" in reasons[8]
    assert "already on line 2" in reasons[9]
    assert "2 cells where the header has 7" in reasons[10]
    assert "whole number" in reasons[11]
    assert "has SKU 'LIN-S', not 'LIN-L'" in reasons[12]

    before = [values(v) for v in (small, large, xl)]
    result = variant_csv.apply(db.session, shop, text)
    assert not result.applied
    assert [values(v) for v in (small, large, xl)] == before
    assert transitions() == 0


@pytest.mark.parametrize(
    ("data", "line", "reason"),
    [
        (b"variant_id,eta\n101,2030-01-01\n102,caf\xe9\n", 3, "not UTF-8"),
        ("", 1, "empty"),
        ("variant_id,colour\n101,red\n", 1, "Unknown column 'colour'"),
        ("product,eta\nShirt,\n", 1, "variant_id or sku column"),
        ("sku,product\nLIN-S,Shirt\n", 1, "nothing to import"),
        ("sku,eta,eta\nLIN-S,,\n", 1, "appears twice"),
    ],
)
def test_files_that_cannot_be_read_say_why(app, data, line, reason):
    shop = factories.shopify_shop(MINE)
    catalogue(shop)
    plan = variant_csv.check(db.session, shop, data)
    assert not plan.ok
    assert plan.errors[0][0] == line and reason in plan.errors[0][1]


def test_more_than_20000_rows_is_refused(app):
    shop = factories.shopify_shop(MINE)
    catalogue(shop)
    text = "sku,lead_days\n" + "LIN-S,3\n" * (variant_csv.MAX_ROWS + 1)
    plan = variant_csv.check(db.session, shop, text)
    assert plan.errors == [
        (variant_csv.MAX_ROWS + 2, "More than 20,000 rows: split the file and import each.")
    ]


def test_a_good_file_is_previewed_then_applied_re_deciding_only_what_changed(app, pushes):
    shop = factories.shopify_shop(MINE)
    small, large, xl = catalogue(shop)
    eta = factories.today_plus(12)
    xl_decided = db.session.get(VariantBadge, xl.id).decided_at
    # By SKU for Small (a new ETA), by id for Large (lead time cleared, limit set); no eta
    # column for XL and the other columns, which are left out, stay as they were.
    text = f"sku,variant_id,eta,lead_days,backorder_limit\nLIN-S,,{eta},,\n,102,,,5\n"
    plan = variant_csv.check(db.session, shop, text)
    assert plan.ok, plan.errors
    assert [(c.line, c.sku, c.field, c.old, c.new) for c in plan.changes] == [
        (2, "LIN-S", "eta", None, eta),
        (3, "LIN-L", "lead_days", 9, None),
        (3, "LIN-L", "backorder_limit", None, 5),
    ]
    assert plan.variants == 2
    assert values(small) == (None, None, None)  # checking wrote nothing

    result = variant_csv.apply(db.session, shop, plan)
    assert result.applied
    assert values(small) == (eta, None, None)
    assert values(large) == (None, None, 5)
    assert values(xl) == (None, None, 3)
    badge = db.session.get(VariantBadge, small.id)
    assert badge.eta == eta  # shoppers see the new date
    # Small's badge changed; Large's stays "In stock"; XL was not in the file, so its stale
    # badge was not re-decided.
    assert (transitions(small), transitions(large), transitions(xl)) == (1, 0, 0)
    assert db.session.get(VariantBadge, xl.id).decided_at == xl_decided
    assert result.badges_changed == 1
    assert pushes == [shop.id]  # once committed, the new badge goes to the store


def test_an_absent_column_leaves_values_alone_and_an_empty_cell_clears(app):
    shop = factories.shopify_shop(MINE)
    small, large, xl = catalogue(shop)
    result = variant_csv.apply(db.session, shop, "sku,backorder_limit\n'=LIN-XL,\nLIN-L,7\n")
    assert result.applied
    assert values(xl) == (None, None, None)
    assert values(large) == (None, 9, 7)


def test_a_plan_gone_stale_is_refused_and_nothing_is_written(app):
    shop = factories.shopify_shop(MINE)
    small, large, xl = catalogue(shop)
    plan = variant_csv.check(db.session, shop, "variant_id,lead_days\n101,4\n102,5\n")
    assert plan.ok
    large.lead_days_override = 30  # someone saved the settings page meanwhile
    db.session.commit()
    result = variant_csv.apply(db.session, shop, plan)
    assert not result.applied
    assert result.plan.errors == [(3, "Lead time was changed by someone else since the check.")]
    assert values(small) == (None, None, None)
    assert values(large) == (None, 30, None)


def test_the_signed_plan_opens_only_for_its_shop_and_only_untampered(app):
    mine, theirs = factories.shopify_shop(MINE), factories.shopify_shop(THEIRS)
    catalogue(mine)
    plan = variant_csv.check(db.session, mine, "variant_id,lead_days\n101,4\n")
    signed = variant_csv.sign(plan, mine, "secret")
    again = variant_csv.unsign(signed, mine, "secret")
    assert [(c.variant_id, c.field, c.old, c.new) for c in again.changes] == [
        (c.variant_id, c.field, c.old, c.new) for c in plan.changes
    ]
    with pytest.raises(variant_csv.PlanRefused, match="another store"):
        variant_csv.unsign(signed, theirs, "secret")
    with pytest.raises(variant_csv.PlanRefused, match="could not be verified"):
        variant_csv.unsign(signed[:-2] + "xx", mine, "secret")
    with pytest.raises(variant_csv.PlanRefused, match="over an hour old"):
        variant_csv.unsign(signed, mine, "secret", max_age=-1)


def test_one_store_cannot_import_onto_another_stores_variants(app):
    mine, theirs = factories.shopify_shop(MINE), factories.shopify_shop(THEIRS)
    catalogue(mine)
    their_small, *_ = catalogue(theirs, product_id="50", title="Their shirt")
    factories.product(theirs, "60", "Hat", variants=[{"platform_id": "601", "sku": "HAT"}])
    # Their variant's store id, their app id and their SKU are all unknown to my store.
    text = f"variant_id,sku,lead_days\n501,,4\n{their_small.id},,4\n,HAT,4\n"
    plan = variant_csv.check(db.session, mine, text)
    assert [line for line, _ in plan.errors] == [2, 3, 4]
    # And a plan checked for my store (with ids of my variants) does not apply to theirs.
    mine_plan = variant_csv.check(db.session, mine, "variant_id,lead_days\n101,4\n")
    result = variant_csv.apply(db.session, theirs, mine_plan)
    assert not result.applied
    assert values(their_small) == (None, None, None)
