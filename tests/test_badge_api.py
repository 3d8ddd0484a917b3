import pytest

from plugin.extensions import db
from plugin.models import Platform
from plugin.services import sandbox_store
from tests import factories


def seed():
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    product, hooks = sandbox_store.create_product(
        db.session, shop, "Mug", [("Blue", "MUG-B", 5, "deny"), ("Red", "MUG-R", 0, "continue")]
    )
    db.session.commit()
    sandbox_store.deliver(shop, hooks)
    return shop, product


def test_badges_by_variant_ids_and_by_product(client):
    _shop, product = seed()
    blue, red = (str(v.id) for v in product.variants)
    by_ids = client.get(f"/storefront/v1/badges?shop=demo.sandbox.local&variants={blue},{red}")
    assert by_ids.status_code == 200
    assert by_ids.json["variants"][blue]["state"] == "in_stock"
    assert by_ids.json["variants"][red]["state"] == "backorder"
    assert by_ids.json["variants"][red]["eta"]  # ISO date
    assert by_ids.json["variants"][red]["eta_text"] in by_ids.json["variants"][red]["label"]

    by_product = client.get(f"/storefront/v1/badges?shop=demo.sandbox.local&product={product.id}")
    assert by_product.json["variants"] == by_ids.json["variants"]


def test_exposes_no_private_data(client):
    _shop, product = seed()
    body = client.get(f"/storefront/v1/badges?shop=demo.sandbox.local&product={product.id}").json
    assert set(body) == {"shop", "enabled", "variants"}
    for badge in body["variants"].values():
        assert set(badge) == {"state", "label", "eta", "eta_text", "color"}


def test_cache_headers_etag_and_304(client):
    _shop, product = seed()
    url = f"/storefront/v1/badges?shop=demo.sandbox.local&product={product.id}"
    first = client.get(url)
    assert "public" in first.headers["Cache-Control"]
    assert "max-age=15" in first.headers["Cache-Control"]
    assert first.headers["Access-Control-Allow-Origin"] == "*"
    etag = first.headers["ETag"]
    again = client.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.data == b""

    # A stock change makes the old ETag stale.
    shop = sandbox_store.ensure_shop(db.session)
    hooks = sandbox_store.set_inventory(db.session, shop, product.variants[0].id, 0)
    db.session.commit()
    sandbox_store.deliver(shop, hooks)
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["ETag"] != etag


TOO_MANY = ",".join(str(i) for i in range(300))


@pytest.mark.parametrize(
    ("query", "status", "error"),
    [
        ("shop=nobody.example&variants=1", 404, "unknown shop"),
        ("variants=1", 400, "the shop parameter is required"),
        ("shop=demo.sandbox.local", 400, "give variants=<id,id,...> or product=<id>"),
        ("shop=demo.sandbox.local&variants=1,<script>", 400, "not a valid id: '<script>'"),
        (f"shop=demo.sandbox.local&variants={TOO_MANY}", 400, "at most 250 variants per request"),
    ],
)
def test_bad_requests_get_clear_json_errors(client, query, status, error):
    seed()
    response = client.get(f"/storefront/v1/badges?{query}")
    assert response.status_code == status
    assert response.json == {"error": error}
    assert response.headers["Cache-Control"] == "no-store"


def test_unknown_variant_ids_get_an_explicit_empty_badge(client):
    seed()
    body = client.get("/storefront/v1/badges?shop=demo.sandbox.local&variants=999").json
    assert body["variants"]["999"]["state"] is None


def test_one_shop_cannot_read_another_shops_badges(client):
    _shop, product = seed()
    factories.shop("other.sandbox.local", Platform.SANDBOX)
    vid = product.variants[0].id
    leaked = client.get(f"/storefront/v1/badges?shop=other.sandbox.local&variants={vid}").json
    assert leaked["variants"][str(vid)]["state"] is None
    by_product = client.get(f"/storefront/v1/badges?shop=other.sandbox.local&product={product.id}")
    assert by_product.json["variants"] == {}
