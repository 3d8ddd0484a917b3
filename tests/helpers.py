"""Signed sandbox deliveries, as the sandbox store POSTs them."""

from __future__ import annotations

from datetime import datetime

from flask import current_app

from plugin.services import sandbox_store
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
        current_app.extensions["settings"].secret_key,
        shop_domain,
        topic,
        payload,
        event_id=event_id,
        triggered_at=triggered_at,
    )
    return client.post("/webhooks/sandbox", data=body, headers=headers)
