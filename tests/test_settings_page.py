"""The sandbox settings page: saves all or nothing, with messages next to the fields."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from plugin.extensions import db
from plugin.models import Platform, StoreSettings, Variant
from plugin.services import sandbox_store
from plugin.services.shop_time import shop_today
from tests import factories


def seed():
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    product, hooks = sandbox_store.create_product(
        db.session, shop, "Tee", [("S", "TEE-S", 0, "continue")]
    )
    db.session.commit()
    sandbox_store.deliver(shop, hooks)
    return shop, product


def valid_form(**overrides):
    form = {
        "enabled": "on",
        "label_in_stock": "Ready to ship",
        "label_backorder": "Ships by {eta}",
        "label_out_of_stock": "Sold out",
        "color_in_stock": "#00aa00",
        "color_backorder": "#aa8800",
        "color_out_of_stock": "#aa0000",
        "default_lead_days": "10",
        "timezone": "Europe/London",
        "email_reply_to": "",
    }
    form.update(overrides)
    return form


def test_get_shows_the_saved_settings(client):
    seed()
    page = client.get("/sandbox/settings").get_data(as_text=True)
    assert 'value="Backorder, ships by {eta}"' in page
    assert 'value="14"' in page


def test_valid_save_updates_settings_and_badges(client):
    _shop, product = seed()
    response = client.post("/sandbox/settings", data=valid_form(), follow_redirects=True)
    assert response.status_code == 200
    assert "Settings saved. 1 badge(s) updated." in response.get_data(as_text=True)
    vid = product.variants[0].id
    badge = client.get(f"/storefront/v1/badges?shop=demo.sandbox.local&variants={vid}").json
    assert badge["variants"][str(vid)]["label"].startswith("Ships by ")


def test_bad_input_is_refused_next_to_the_field_and_nothing_saved_is_lost(client):
    _shop, product = seed()
    vid = product.variants[0].id
    yesterday = (shop_today("UTC") - timedelta(days=1)).isoformat()
    form = valid_form(
        default_lead_days="abc",
        color_backorder="red",
        label_backorder="Ships soon",
    )
    response = client.post("/sandbox/settings", data=form)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    for field, message in [
        ("default_lead_days", "Lead time must be a whole number."),
        ("color_backorder", "Use a colour like #1a7f37."),
        ("label_backorder", "Include {eta} where the ship-by date should appear."),
    ]:
        assert re.search(
            rf'<p class="field-error" id="{re.escape(field)}-error">{re.escape(message)}</p>', page
        ), field
    # What the merchant typed is kept...
    assert 'value="Ships soon"' in page and 'value="abc"' in page
    # ...and what was saved before is untouched.
    db.session.expire_all()
    settings = db.session.scalars(select(StoreSettings)).one()
    assert settings.label_backorder == "Backorder, ships by {eta}"
    assert settings.default_lead_days == 14
    assert db.session.get(Variant, 1).backorder_limit is None

    # Per-variant values are refused next to their field on the Variants page, nothing saved.
    response = client.post(
        "/sandbox/variants", data={f"variant-{vid}-eta": yesterday, f"variant-{vid}-limit": "-1"}
    )
    assert response.status_code == 422
    for field, message in [
        (f"variant-{vid}-eta", f"ETA {yesterday} is in the past."),
        (f"variant-{vid}-limit", "Backorder limit must be between 0 and 1000000 (got -1)."),
    ]:
        assert re.search(
            rf'<p class="field-error" id="{re.escape(field)}-error">{re.escape(message)}</p>',
            response.text,
        ), field
    db.session.expire_all()
    assert db.session.get(Variant, 1).backorder_limit is None


def test_per_variant_eta_and_limit_are_saved_on_the_variants_page(client):
    _shop, product = seed()
    vid = product.variants[0].id
    eta = (shop_today("UTC") + timedelta(days=30)).isoformat()
    client.post("/sandbox/variants", data={f"variant-{vid}-eta": eta, f"variant-{vid}-limit": "4"})
    badge = client.get(f"/storefront/v1/badges?shop=demo.sandbox.local&variants={vid}").json
    assert badge["variants"][str(vid)]["eta"] == eta
    db.session.expire_all()
    assert db.session.get(Variant, 1).backorder_limit == 4

    # A settings save, with or without variant keys, leaves the per-variant values alone.
    client.post("/sandbox/settings", data=valid_form(**{f"variant-{vid}-limit": ""}))
    db.session.expire_all()
    assert db.session.get(Variant, 1).backorder_limit == 4
    assert db.session.get(Variant, 1).eta_override.isoformat() == eta


def test_settings_form_cannot_change_another_shops_variant(client):
    seed()
    other = factories.shop("other.sandbox.local", Platform.SANDBOX)
    product, hooks = sandbox_store.create_product(
        db.session, other, "Other", [("X", "X", 0, "deny")]
    )
    db.session.commit()
    sandbox_store.deliver(other, hooks)
    other_variant = db.session.scalars(select(Variant).where(Variant.shop_id == other.id)).one()
    client.post("/sandbox/settings", data=valid_form(**{f"variant-{other_variant.id}-limit": "1"}))
    db.session.expire_all()
    assert db.session.get(Variant, other_variant.id).backorder_limit is None


def test_the_merchant_chooses_which_locations_count(client):
    from plugin.models import InventoryLevel, Product
    from plugin.services.catalog import set_level

    _shop, product = seed()
    vid = product.variants[0].id
    mirror = db.session.scalars(select(Variant)).one()
    # A second location (say, a store room) holds 5 units of the sold-out variant.
    set_level(db.session, mirror, "backroom", 5, db.session.get(Product, 1).source_updated_at)
    db.session.commit()
    page = client.get("/sandbox/settings").get_data(as_text=True)
    assert 'name="location" value="backroom" checked' in page
    assert 'name="location" value="default" checked' in page

    # Counting both: the backroom's 5 units make it in stock.
    client.post(
        "/sandbox/settings",
        data={**valid_form(), "locations_shown": "1", "location": ["default", "backroom"]},
    )
    badge_url = f"/storefront/v1/badges?shop=demo.sandbox.local&variants={vid}"
    assert client.get(badge_url).json["variants"][str(vid)]["state"] == "in_stock"

    # Only the shop floor counts: sold out there, so backorder.
    client.post(
        "/sandbox/settings", data={**valid_form(), "locations_shown": "1", "location": ["default"]}
    )
    assert client.get(badge_url).json["variants"][str(vid)]["state"] == "backorder"
    db.session.expire_all()
    assert db.session.scalars(select(StoreSettings)).one().location_ids == ["default"]

    # None ticked is refused next to the field, and the saved choice stays.
    refused = client.post("/sandbox/settings", data={**valid_form(), "locations_shown": "1"})
    assert refused.status_code == 422
    assert "Choose at least one location whose stock counts." in refused.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalars(select(StoreSettings)).one().location_ids == ["default"]
    assert len(db.session.scalars(select(InventoryLevel)).all()) == 2


@pytest.mark.parametrize(
    ("typed", "status", "saved"),
    [
        ("2026-12-24\n2026-12-31", 302, ["2026-12-24", "2026-12-31"]),
        ("2026-12-31, 2026-12-24, 2026-12-24", 302, ["2026-12-24", "2026-12-31"]),
        ("24/12/2026", 422, []),
    ],
)
def test_the_merchant_closes_dates_and_a_bad_one_is_refused(client, typed, status, saved):
    seed()
    response = client.post("/sandbox/settings", data=valid_form(closed_dates=typed))
    assert response.status_code == status
    if status == 422:
        assert "&#39;24/12/2026&#39; is not a date like 2026-12-24." in response.get_data(
            as_text=True
        )
    db.session.expire_all()
    assert db.session.scalars(select(StoreSettings)).one().closed_dates == saved
