"""Lines healed by reconciliation (a missed order webhook) are mailed like any other, except on
the first sync after an install, which meets weeks of old orders at once and mails nobody."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from plugin.extensions import db
from plugin.models import OutboxMail, utcnow
from tests import factories


@pytest.mark.parametrize(
    ("synced_before", "mailed"), [(True, ["backorder_confirmation"]), (False, [])]
)
def test_an_order_whose_webhook_was_lost_is_confirmed_after_reconciliation(
    app, synced_before, mailed
):
    shop = factories.shop()
    shop.orders_synced_at = utcnow() if synced_before else None
    db.session.commit()
    product = factories.sandbox_product(shop, "Tee", [("Medium", "TEE-M", 0, "continue")])
    # The catalogue reached the app; the order's webhooks are lost (never delivered).
    factories.sandbox_order(shop, product.variants[0].id, 2, "ada@example.com")

    result = app.test_cli_runner().invoke(args=["reconcile", "--shop", shop.domain])

    assert result.exit_code == 0, result.output
    assert "1 backorder line(s) healed" in result.output
    db.session.expire_all()
    sent = db.session.scalars(select(OutboxMail)).all()
    assert [m.kind for m in sent] == mailed
    assert all(m.recipient == "ada@example.com" for m in sent)
