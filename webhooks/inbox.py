"""Storing a verified delivery, once per platform event id.

One statement either inserts the event or, for a duplicate, counts the extra delivery: no
savepoint, no read-before-write, since this sits on the webhook endpoint's hot path.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from plugin.models import InboxStatus, WebhookEvent, utcnow
from webhooks.source import Delivery

# Headers worth keeping for support and replay; never signatures.
KEPT_HEADER_PREFIXES = ("x-shopify-", "webhook-", "x-sandbox-", "x-bc-", "content-type")
_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@dataclass(frozen=True)
class Recorded:
    id: int
    status: InboxStatus
    is_new: bool


def kept_headers(headers: dict[str, str]) -> dict[str, str]:
    return {
        k: v
        for k, v in headers.items()
        if k.lower().startswith(KEPT_HEADER_PREFIXES)
        and "hmac" not in k.lower()
        and "signature" not in k.lower()
        and "secret" not in k.lower()
    }


def record(
    session: Session,
    platform: str,
    delivery: Delivery,
    body: bytes,
    headers: dict[str, str],
    shop_id: int | None,
) -> Recorded:
    """Insert the event, or count another delivery of one already stored."""
    insert = _INSERTS[session.get_bind().dialect.name]
    statement = (
        insert(WebhookEvent)
        .values(
            platform=platform,
            shop_id=shop_id,
            shop_domain=delivery.shop_domain,
            topic=delivery.topic,
            event_id=delivery.event_id,
            triggered_at=delivery.triggered_at,
            received_at=utcnow(),
            body=body,
            headers=kept_headers(headers),
        )
        .on_conflict_do_nothing(index_elements=["platform", "event_id"])
        .returning(WebhookEvent.id)
    )
    new_id = session.execute(statement).scalar()
    if new_id is not None:
        return Recorded(new_id, InboxStatus.PENDING, True)
    existing = session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.platform == platform, WebhookEvent.event_id == delivery.event_id)
        .values(deliveries=WebhookEvent.deliveries + 1)
        .returning(WebhookEvent.id, WebhookEvent.status)
    ).one()
    return Recorded(existing.id, InboxStatus(existing.status), False)
