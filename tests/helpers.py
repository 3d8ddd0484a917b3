"""What the tests share: signed sandbox deliveries, as the sandbox store POSTs them, and a
counter of the requests that entered Flask."""

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


class FlaskEntered:
    """Counts the requests that went into Flask (its `request_started` signal): what the
    WSGI fronts in front of the badge API and the webhooks answer themselves never does."""

    def __init__(self, app):
        self.app, self.count = app, 0

    def __enter__(self):
        from flask import request_started

        request_started.connect(self.seen, self.app)
        return self

    def __exit__(self, *_exc):
        from flask import request_started

        request_started.disconnect(self.seen, self.app)

    def seen(self, _sender, **_extra):
        self.count += 1
