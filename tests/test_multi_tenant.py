"""One shop cannot read or change another's data, whatever door it knocks on."""

from sqlalchemy import select

from plugin.extensions import db
from plugin.models import InventoryLevel, Platform, Variant
from plugin.services import sandbox_store
from tests import factories
from tests.helpers import post_sandbox_webhook


def test_a_webhook_signed_for_shop_b_cannot_touch_shop_a_variants(client):
    shop_a = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    product, hooks = sandbox_store.create_product(
        db.session, shop_a, "A tee", [("S", "A-S", 5, "deny")]
    )
    db.session.commit()
    sandbox_store.deliver(shop_a, hooks)
    factories.shop("b.sandbox.local", Platform.SANDBOX)
    vid = product.variants[0].id

    # Shop B names shop A's variant id in its own (validly signed) webhook.
    response = post_sandbox_webhook(
        client,
        "inventory_levels/update",
        {"variant_id": vid, "location_id": "default", "available": 0},
        shop_domain="b.sandbox.local",
    )
    assert response.status_code == 200
    db.session.expire_all()
    a_variant = db.session.scalars(select(Variant).where(Variant.shop_id == shop_a.id)).one()
    assert a_variant.inventory_total == 5
    assert db.session.scalars(select(InventoryLevel)).all() == a_variant.levels
    badge = client.get(f"/storefront/v1/badges?shop=demo.sandbox.local&variants={vid}").json
    assert badge["variants"][str(vid)]["state"] == "in_stock"


def test_sandbox_store_refuses_another_stores_variant(app):
    import pytest

    shop_a = sandbox_store.ensure_shop(db.session)
    product, _ = sandbox_store.create_product(
        db.session, shop_a, "A tee", [("S", "A-S", 5, "deny")]
    )
    shop_b = factories.shop("b.sandbox.local", Platform.SANDBOX)
    with pytest.raises(sandbox_store.SandboxError):
        sandbox_store.set_inventory(db.session, shop_b, product.variants[0].id, 0)
