"""Storing a verified delivery, once per platform event id."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.models import WebhookEvent, utcnow
from webhooks.source import Delivery

# Headers worth keeping for support and replay; never Authorization-like ones.
KEPT_HEADER_PREFIXES = ("x-shopify-", "webhook-", "x-sandbox-", "x-bc-", "content-type")


def record(
    session: Session,
    platform: str,
    delivery: Delivery,
    body: bytes,
    headers: dict[str, str],
    shop_id: int | None,
) -> tuple[WebhookEvent, bool]:
    """Insert the event, or count another delivery of one already stored. Returns (row, is_new)."""
    kept = {
        k: v
        for k, v in headers.items()
        if k.lower().startswith(KEPT_HEADER_PREFIXES)
        and "hmac" not in k.lower()
        and "signature" not in k.lower()
    }
    event = WebhookEvent(
        platform=platform,
        shop_id=shop_id,
        shop_domain=delivery.shop_domain,
        topic=delivery.topic,
        event_id=delivery.event_id,
        triggered_at=delivery.triggered_at,
        received_at=utcnow(),
        body=body,
        headers=kept,
    )
    try:
        with session.begin_nested():
            session.add(event)
        return event, True
    except IntegrityError:
        existing = session.scalars(
            select(WebhookEvent).where(
                WebhookEvent.platform == platform, WebhookEvent.event_id == delivery.event_id
            )
        ).one()
        existing.deliveries += 1
        return existing, False
