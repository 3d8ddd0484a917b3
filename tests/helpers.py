"""Small builders shared by tests: signed sandbox deliveries and seeded shops."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from plugin.extensions import db
from plugin.models import Platform, Shop
from plugin.services import sandbox_store, shops
from plugin.services.tokens import vault
from webhooks import sandbox as sandbox_webhooks


def post_sandbox_webhook(
    client,
    topic: str,
    payload: dict,
    *,
    shop_domain: str = sandbox_store.DEMO_SHOP,
    event_id: str | None = None,
    triggered_at: datetime | None = None,
):
    body, headers = sandbox_webhooks.build_delivery(
        current_app.extensions["settings"],
        shop_domain,
        topic,
        payload,
        event_id=event_id,
        triggered_at=triggered_at,
    )
    return client.post("/webhooks/sandbox", data=body, headers=headers)


def make_shop(domain: str, platform: Platform = Platform.SANDBOX, token: str | None = None) -> Shop:
    shop = shops.install_shop(db.session, vault(), platform, domain, access_token=token)
    db.session.commit()
    return shop
