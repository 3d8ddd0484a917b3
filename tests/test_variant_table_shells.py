"""The Variants page in each shell, and the two bugs it fixes: 10,000 variants' values saved
through the form (page by page) and through the JSON API (one body) with no 413 and no lost
value; a JSON settings save without variant keys changes no variant. One shop's token or page
never reads or edits another shop's variants by id."""

from __future__ import annotations

import json
import time
from html import unescape

import pytest
from sqlalchemy import func, select

from plugin.extensions import db
from plugin.models import BadgeTransition, Product, Variant
from plugin.services import bigcommerce_session, sandbox_store
from tests import factories
from tests.shopify_install_helpers import session_token

MINE = "mine-variants.myshopify.com"
THEIRS = "theirs-variants.myshopify.com"
ROWS = 10_000


@pytest.fixture
def pushes(monkeypatch) -> list[int]:
    """Shops a badge push was scheduled for (real platforms are not reachable from tests)."""
    scheduled: list[int] = []
    monkeypatch.setattr("plugin.jobs.schedule_push", scheduled.append)
    return scheduled


def many_variants(shop, count: int = ROWS) -> list[int]:
    product = Product(shop_id=shop.id, platform_id=f"bulk-{shop.id}", title="Bulk tee")
    db.session.add(product)
    db.session.flush()
    db.session.add_all(
        Variant(
            shop_id=shop.id,
            product_id=product.id,
            platform_id=f"{shop.id}-v{n}",
            sku=f"SKU-{n}",
            title=f"Size {n}",
        )
        for n in range(count)
    )
    db.session.commit()
    return list(
        db.session.scalars(select(Variant.id).where(Variant.shop_id == shop.id).order_by("id"))
    )


def limits(shop) -> dict[int, int | None]:
    db.session.expire_all()
    query = select(Variant.id, Variant.backorder_limit).where(Variant.shop_id == shop.id)
    return dict(db.session.execute(query).all())


def bearer(domain: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {session_token(domain)}"}


# -- the bugs ------------------------------------------------------------------------------------


def test_ten_thousand_variants_saved_through_the_form_page_by_page(app, client, pushes):
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    ids = many_variants(shop)
    started = time.monotonic()
    per_page = 200
    for start in range(0, ROWS, per_page):
        form = {f"variant-{vid}-limit": str(vid % 1000) for vid in ids[start : start + per_page]}
        form["page"] = str(start // per_page + 1)
        response = client.post("/sandbox/variants", data=form)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
    elapsed = time.monotonic() - started
    saved = limits(shop)
    assert len(saved) == ROWS and all(saved[vid] == vid % 1000 for vid in ids)
    assert elapsed < 180, f"10,000 rows took {elapsed:.1f}s"


def test_ten_thousand_changed_rows_in_one_json_body(app, client, pushes):
    shop = factories.shopify_shop(MINE)
    ids = many_variants(shop)
    eta = factories.today_plus(30).isoformat()
    rows = [{"id": vid, "limit": vid % 1000, "eta": eta, "lead": 3} for vid in ids]
    body = json.dumps({"rows": rows})
    assert len(body) < 5 * 1024 * 1024
    response = client.post(
        "/shopify/api/variants",
        data=body,
        headers={**bearer(MINE), "Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert len(response.json["changed"]) == ROWS
    saved = limits(shop)
    assert all(saved[vid] == vid % 1000 for vid in ids)
    assert db.session.scalar(select(func.count()).where(Variant.eta_override.is_(None))) == 0
    # More rows than one save takes: refused cleanly, telling the client to page.
    too_many = json.dumps({"rows": [{"id": n + 1, "limit": 1} for n in range(ROWS + 1)]})
    refused = client.post(
        "/shopify/api/variants",
        data=too_many,
        headers={**bearer(MINE), "Content-Type": "application/json"},
    )
    assert refused.status_code == 413 and "page through them" in refused.json["error"]


def test_a_json_settings_save_without_variant_keys_changes_no_variant(
    app, client, pushes, monkeypatch
):
    # The storefront's labels and colours go to Shopify too: not reachable from tests.
    monkeypatch.setattr(
        "plugin.services.storefront_config.schedule_storefront_push", pushes.append, raising=False
    )
    shop = factories.shopify_shop(MINE)
    eta = factories.today_plus(20)
    factories.product(
        shop,
        "p1",
        "Tee",
        [
            {"platform_id": "v1", "sku": "A", "backorder_limit": 4, "eta_override": eta},
            {"platform_id": "v2", "sku": "B", "lead_days_override": 9},
        ],
    )
    settings = {
        "enabled": True,
        "label_in_stock": "In stock",
        "label_backorder": "Ships by {eta}",
        "label_out_of_stock": "Sold out",
        "color_in_stock": "#1a7f37",
        "color_backorder": "#9a6700",
        "color_out_of_stock": "#cf222e",
        "default_lead_days": 10,
    }
    response = client.post("/shopify/api/settings", json=settings, headers=bearer(MINE))
    assert response.status_code == 200, response.json
    db.session.expire_all()
    values = db.session.execute(
        select(
            Variant.sku, Variant.eta_override, Variant.lead_days_override, Variant.backorder_limit
        ).order_by(Variant.sku)
    ).all()
    assert [tuple(v) for v in values] == [("A", eta, None, 4), ("B", None, 9, None)]


# -- each shell ----------------------------------------------------------------------------------


def test_shopify_lists_searches_saves_changed_rows_and_bulk_edits(app, client, pushes):
    shop = factories.shopify_shop(MINE)
    factories.product(
        shop,
        "p1",
        "Linen shirt",
        [
            {"platform_id": "101", "sku": "LIN-S", "title": "Small"},
            {"platform_id": "102", "sku": "LIN-L", "title": "Large", "inventory_total": 3},
        ],
    )
    small, large = (v.id for v in db.session.scalars(select(Variant).order_by(Variant.id)))
    listing = client.get("/shopify/api/variants?q=lin-l", headers=bearer(MINE))
    assert listing.status_code == 200
    assert [r["sku"] for r in listing.json["rows"]] == ["LIN-L"]
    assert listing.json["rows"][0]["owed_text"] == "none owed"
    assert client.get("/shopify/api/variants?state=nope", headers=bearer(MINE)).status_code == 400
    assert client.get("/shopify/api/variants").status_code == 401

    before = db.session.scalar(select(func.count()).select_from(BadgeTransition))
    saved = client.post(
        "/shopify/api/variants", json={"rows": [{"id": small, "lead": 4}]}, headers=bearer(MINE)
    )
    assert saved.status_code == 200 and saved.json["changed"] == [small]
    after = db.session.scalars(select(BadgeTransition.variant_id)).all()
    assert set(after[before:]) <= {small}  # the other variant was not re-decided

    refused = client.post(
        "/shopify/api/variants", json={"rows": [{"id": large, "eta": "soon"}]}, headers=bearer(MINE)
    )
    assert refused.status_code == 422
    assert refused.json["errors"] == [
        {"id": large, "field": "eta", "message": "ETA 'soon' is not a date like 2026-12-24."}
    ]
    bulk = client.post(
        "/shopify/api/variants/bulk",
        json={"filter": {"q": "linen"}, "set": {"limit": 6}},
        headers=bearer(MINE),
    )
    assert bulk.status_code == 200 and (bulk.json["matched"], bulk.json["changed"]) == (2, 2)
    cleared = client.post(
        "/shopify/api/variants/bulk",
        json={"ids": [large], "clear": ["limit"]},
        headers=bearer(MINE),
    )
    assert cleared.status_code == 200
    assert limits(shop) == {small: 6, large: None}


def test_one_shopify_shops_token_cannot_read_or_edit_anothers_variants(app, client, pushes):
    mine, theirs = factories.shopify_shop(MINE), factories.shopify_shop(THEIRS)
    factories.product(mine, "m1", "Mine", [{"platform_id": "1", "sku": "MINE"}])
    factories.product(theirs, "t1", "Theirs", [{"platform_id": "2", "sku": "THEIRS"}])
    victim = db.session.scalar(select(Variant.id).where(Variant.shop_id == theirs.id))
    listing = client.get("/shopify/api/variants?q=theirs", headers=bearer(MINE))
    assert listing.json["total"] == 0
    edit = client.post(
        "/shopify/api/variants", json={"rows": [{"id": victim, "limit": 1}]}, headers=bearer(MINE)
    )
    assert edit.status_code == 422
    assert edit.json["errors"][0]["message"] == "No such variant in this store."
    bulk = client.post(
        "/shopify/api/variants/bulk",
        json={"ids": [victim], "set": {"limit": 1}},
        headers=bearer(MINE),
    )
    assert bulk.status_code == 200 and bulk.json["matched"] == 0
    assert limits(theirs) == {victim: None}


def test_bigcommerce_variants_page_with_its_app_token(app, client, pushes):
    mine = factories.bigcommerce_store("vtmine1", owner=7)
    theirs = factories.bigcommerce_store("vttheir2", owner=8)
    factories.product(mine, "10", "Linen shirt", [{"platform_id": "101", "sku": "LIN-S"}])
    factories.product(theirs, "20", "Their shirt", [{"platform_id": "201", "sku": "THEIR-S"}])
    mine_id = db.session.scalar(select(Variant.id).where(Variant.shop_id == mine.id))
    victim = db.session.scalar(select(Variant.id).where(Variant.shop_id == theirs.id))
    token = bigcommerce_session.issue(app.config["SECRET_KEY"], "vtmine1", "7")
    settings = client.get(f"/bigcommerce/app/vtmine1?token={token}").get_data(as_text=True)
    link = f"/bigcommerce/app/vtmine1/variants?token={token}"
    assert link in unescape(settings)  # the nav link
    page = client.get(link)
    assert page.status_code == 200 and "LIN-S" in page.text and "THEIR-S" not in page.text
    assert client.get(f"/bigcommerce/app/vttheir2/variants?token={token}").status_code == 403
    assert client.get("/bigcommerce/app/vtmine1/variants").status_code == 401

    saved = client.post(
        "/bigcommerce/app/vtmine1/variants", data={"token": token, f"variant-{mine_id}-limit": "3"}
    )
    assert saved.status_code == 302
    assert "Saved 1 variant(s)" in client.get(saved.headers["Location"]).text
    refused = client.post(
        "/bigcommerce/app/vtmine1/variants", data={"token": token, f"variant-{victim}-limit": "1"}
    )
    assert refused.status_code == 422 and "not in this store" in refused.text
    assert limits(mine) == {mine_id: 3} and limits(theirs) == {victim: None}
