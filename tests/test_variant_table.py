"""The Variants page's service and sandbox shell: search, filters and paging in SQL, "3 of 5",
saving only what changed (other variants' badges untouched), bulk edits over a filter, and
refusals next to the field. The settings save no longer touches per-variant values."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from plugin.extensions import db
from plugin.models import BadgeTransition, Platform, Variant
from plugin.services import variant_table
from plugin.services.badging import refresh_shop_badges
from plugin.services.shop_time import shop_today
from tests import factories


def catalogue(owner=None):
    """Tee (S, M, L), Mug (Blue, Red): a mix of states, an ETA, a limit of 5 with 3 owed."""
    owner = owner or factories.shop()
    eta = shop_today("UTC") + timedelta(days=20)
    tee = factories.product(
        owner,
        f"{owner.id}-tee",
        "Organic Tee",
        [
            {
                "platform_id": f"{owner.id}-s",
                "sku": "TEE-S",
                "title": "Small",
                "inventory_total": 4,
            },
            {
                "platform_id": f"{owner.id}-m",
                "sku": "TEE-M",
                "title": "Medium",
                "sells_past_zero": True,
                "backorder_limit": 5,
            },
            {
                "platform_id": f"{owner.id}-l",
                "sku": "TEE-L",
                "title": "Large",
                "sells_past_zero": True,
                "eta_override": eta,
            },
        ],
    )
    mug = factories.product(
        owner,
        f"{owner.id}-mug",
        "Enamel Mug",
        [
            {"platform_id": f"{owner.id}-b", "sku": "MUG-BLUE", "title": "Blue"},
            {
                "platform_id": f"{owner.id}-r",
                "sku": "MUG-RED",
                "title": "Red",
                "inventory_total": 9,
            },
        ],
    )
    small, medium, large = tee.variants
    factories.backorder_line(medium, f"{owner.id}-o1", quantity=2, email="a@example.com")
    factories.backorder_line(medium, f"{owner.id}-o2", quantity=1, email="b@example.com")
    factories.notify_subscription(mug.variants[0])
    refresh_shop_badges(db.session, owner, cause="test")
    db.session.commit()
    return owner, {v.title: v.id for v in (*tee.variants, *mug.variants)}


def names(listing) -> list[str]:
    return [row.title for row in listing.rows]


def transitions() -> int:
    return db.session.scalar(select(func.count()).select_from(BadgeTransition))


# -- the page ------------------------------------------------------------------------------------


def test_search_matches_titles_options_and_skus_every_word(app):
    shop, _ids = catalogue()
    assert names(variant_table.page(db.session, shop)) == [
        "Blue",
        "Red",
        "Small",
        "Medium",
        "Large",
    ]
    assert names(variant_table.page(db.session, shop, "tee")) == ["Small", "Medium", "Large"]
    assert names(variant_table.page(db.session, shop, "mug-red")) == ["Red"]
    assert names(variant_table.page(db.session, shop, "organic  medium")) == ["Medium"]
    assert names(variant_table.page(db.session, shop, "100%_")) == []  # wildcards are literal


def test_filters_state_eta_limit_and_waiting(app):
    shop, _ids = catalogue()

    def filtered(**args):
        return names(variant_table.page(db.session, shop, "", args))

    assert filtered(state="in_stock") == ["Red", "Small"]
    assert filtered(state="backorder") == ["Medium", "Large"]  # 3 owed of 5: 2 more may sell
    assert filtered(state="out_of_stock") == ["Blue"]
    assert filtered(has_eta="1") == ["Large"]
    assert filtered(waiting="1") == ["Blue", "Medium"]  # a sign-up; units owed
    assert filtered(limit_reached="1") == []  # 3 of 5
    assert filtered(q="tee", waiting="1") == ["Medium"]
    listing = variant_table.page(db.session, shop, "", {"state": "sold"})
    assert listing.problem.startswith("Unknown state 'sold'")


def test_a_row_shows_stock_badge_and_units_owed_against_the_limit(app):
    shop, ids = catalogue()
    (medium,) = variant_table.page(db.session, shop, "TEE-M").rows
    assert (medium.owed, medium.limit, medium.owed_text) == (3, 5, "3 of 5")
    assert medium.state == "backorder" and medium.stock == 0
    (large,) = variant_table.page(db.session, shop, "TEE-L").rows
    assert large.owed_text == "none owed" and large.eta is not None
    assert large.label.startswith("Backorder, ships by")

    db.session.get(Variant, ids["Medium"]).backorder_limit = 3
    db.session.commit()
    (medium,) = variant_table.page(db.session, shop, "", {"limit_reached": "1"}).rows
    assert medium.owed_text == "3 of 3" and medium.limit_reached


def test_paging_is_stable_and_clamped(app):
    shop, _ids = catalogue()
    first = variant_table.page(db.session, shop, page=1, per_page=2)
    second = variant_table.page(db.session, shop, page=2, per_page=2)
    last = variant_table.page(db.session, shop, page=99, per_page=2)
    assert (first.total, first.pages) == (5, 3)
    assert names(first) + names(second) + names(last) == [
        "Blue",
        "Red",
        "Small",
        "Medium",
        "Large",
    ]
    assert last.page == 3 and (last.first, last.last) == (5, 5)


def test_another_shops_variants_are_never_listed(app):
    shop, _ids = catalogue()
    catalogue(factories.shop("other.sandbox.local", Platform.SANDBOX))
    assert variant_table.page(db.session, shop).total == 5


# -- saving -------------------------------------------------------------------------------------


def test_saving_a_row_touches_only_what_changed(app):
    shop, ids = catalogue()
    before = transitions()
    eta = (shop_today("UTC") + timedelta(days=40)).isoformat()
    unchanged = {"eta": "", "lead": "", "limit": ""}
    result = variant_table.save(
        db.session,
        shop,
        {
            ids["Medium"]: {"eta": eta, "lead": "", "limit": "5"},  # only the ETA differs
            ids["Small"]: unchanged,
            ids["Blue"]: unchanged,
        },
    )
    assert result.ok and result.changed == [ids["Medium"]]
    assert result.badges_changed == 1
    # One transition, for the variant whose ETA moved; the others were not re-decided.
    rows = db.session.scalars(select(BadgeTransition).order_by(BadgeTransition.id)).all()
    assert len(rows) == before + 1 and rows[-1].variant_id == ids["Medium"]
    assert rows[-1].cause == "settings"


def test_a_bad_value_refuses_the_save_next_to_its_field(app):
    shop, ids = catalogue()
    yesterday = (shop_today("UTC") - timedelta(days=1)).isoformat()
    result = variant_table.save(
        db.session,
        shop,
        {
            ids["Small"]: {"eta": yesterday, "limit": str(10**30)},
            ids["Red"]: {"lead": "5"},
        },
    )
    assert not result.ok
    assert result.errors[ids["Small"]] == {
        "eta": f"ETA {yesterday} is in the past.",
        "limit": "Backorder limit must be between 0 and 1000000.",
    }
    db.session.expire_all()
    assert db.session.get(Variant, ids["Red"]).lead_days_override is None  # all or nothing


def test_bulk_edit_over_a_filter_reaches_every_page_and_only_what_matches(app):
    shop, ids = catalogue()
    before = transitions()
    filters, _ = variant_table.filters_from({"state": "backorder"})
    result = variant_table.bulk(db.session, shop, filters, {"lead": "7"})
    assert result.ok and result.matched == 2
    db.session.expire_all()
    leads = dict(db.session.execute(select(Variant.title, Variant.lead_days_override)).all())
    assert leads == {"Small": None, "Medium": 7, "Large": 7, "Blue": None, "Red": None}
    # The same edit again changes nothing and re-decides nothing.
    again = variant_table.bulk(db.session, shop, filters, {"lead": "7"})
    assert again.ok and again.changed == [] and transitions() == before + result.badges_changed
    # Clearing over the selection.
    cleared = variant_table.bulk(db.session, shop, [ids["Medium"], ids["Blue"]], {"lead": None})
    assert cleared.matched == 2 and cleared.changed == [ids["Medium"]]
    refused = variant_table.bulk(db.session, shop, [ids["Blue"]], {"limit": "-1"})
    assert refused.errors == {"limit": "Backorder limit must be between 0 and 1000000 (got -1)."}


# -- the sandbox shell --------------------------------------------------------------------------


def test_the_sandbox_page_saves_a_row_and_keeps_the_filter(client):
    shop, ids = catalogue()
    page = client.get("/sandbox/variants?q=tee")
    assert page.status_code == 200
    assert "Variants 1\u20133 of 3" in page.text and "3 of 5" in page.text
    form = {
        "q": "tee",
        f"variant-{ids['Small']}-limit": "2",
        f"variant-{ids['Medium']}-limit": "9",  # typed, but another row's button was pressed
        "row": str(ids["Small"]),
    }
    response = client.post("/sandbox/variants", data=form)
    assert response.status_code == 302 and response.location.endswith("/sandbox/variants?q=tee")
    db.session.expire_all()
    assert db.session.get(Variant, ids["Small"]).backorder_limit == 2
    assert db.session.get(Variant, ids["Medium"]).backorder_limit == 5


def test_the_sandbox_page_refuses_next_to_the_field_and_keeps_what_was_typed(client):
    shop, ids = catalogue()
    key = f"variant-{ids['Small']}-lead"
    response = client.post("/sandbox/variants", data={key: "soon", "q": "small"})
    assert response.status_code == 422
    assert re.search(
        rf'<p class="field-error" id="{key}-error">Lead time &#39;soon&#39; must be a whole '
        r"number.</p>",
        response.text,
    )
    assert f'name="{key}" id="{key}" form="rows-form" aria-label="Lead time for Organic Tee · '
    assert 'value="soon"' in response.text and 'aria-invalid="true"' in response.text


def test_the_sandbox_bulk_form_edits_the_ticked_or_the_filtered(client):
    shop, ids = catalogue()
    response = client.post(
        "/sandbox/variants/bulk",
        data={"scope": "filter", "q": "mug", "field": "limit", "action": "set", "value": "4"},
    )
    assert response.status_code == 302
    db.session.expire_all()
    limits = dict(db.session.execute(select(Variant.title, Variant.backorder_limit)).all())
    assert limits == {"Small": None, "Medium": 5, "Large": None, "Blue": 4, "Red": 4}
    refused = client.post(
        "/sandbox/variants/bulk", data={"scope": "selected", "field": "eta", "value": "x"}
    )
    assert refused.status_code == 422 and "Select at least one variant." in refused.text


def test_one_shop_cannot_edit_another_shops_variant_by_id(client):
    catalogue()  # the sandbox store
    _other, other_ids = catalogue(factories.shop("other.sandbox.local", Platform.SANDBOX))
    victim = other_ids["Small"]
    response = client.post("/sandbox/variants", data={f"variant-{victim}-limit": "1"})
    assert response.status_code == 422
    bulk = client.post(
        "/sandbox/variants/bulk",
        data={"scope": "selected", "selected": str(victim), "field": "limit", "value": "1"},
    )
    assert bulk.status_code == 302
    db.session.expire_all()
    assert db.session.get(Variant, victim).backorder_limit is None
