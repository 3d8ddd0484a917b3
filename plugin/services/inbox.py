"""The webhook inbox: storing a verified delivery, once per platform event id.

One statement either inserts the event or, for a duplicate, counts the extra delivery: no
savepoint, no read-before-write, since this sits on the webhook endpoint's hot path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from plugin.models import InboxStatus, Shop, WebhookEvent, utcnow
from plugin.platforms import webhook_source
from plugin.services.shops import find_shop, webhook_secret
from webhooks.source import Delivery, StoredDelivery, kept_headers

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@dataclass(frozen=True)
class Recorded:
    id: int
    status: InboxStatus
    is_new: bool

    @property
    def needs_processing(self) -> bool:
        return self.status in (InboxStatus.PENDING, InboxStatus.FAILED)


def receive(session: Session, platform: str, body: bytes, headers: Mapping[str, str]) -> Recorded:
    """Verify a delivery on its raw body, store it and commit: after this it cannot be lost.

    Raises `webhooks.source.WebhookRefused` (nothing stored) if it does not verify, and
    LookupError for a platform the app does not know.
    """
    source = webhook_source(platform)
    shops: dict[str, Shop | None] = {}

    def shop_named(domain: str) -> Shop | None:
        if domain not in shops:
            shops[domain] = find_shop(session, platform, domain)
        return shops[domain]

    def secret_of(domain: str) -> str | None:
        shop = shop_named(domain)
        return webhook_secret(shop) if shop is not None else None

    delivery = source.verify(body, headers, secret_of)
    shop = shop_named(delivery.shop_domain)
    kept = kept_headers(headers, source.kept_header_prefixes)
    event = record(session, platform, delivery, body, kept, shop.id if shop else None)
    session.commit()
    return event


def record(
    session: Session,
    platform: str,
    delivery: Delivery,
    body: bytes,
    headers: dict[str, str],
    shop_id: int | None,
) -> Recorded:
    """Insert the event, or count another delivery of one already stored. `headers` are the
    ones worth keeping (see `webhooks.source.kept_headers`)."""
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
            headers=headers,
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


def stored_delivery(event: WebhookEvent) -> StoredDelivery:
    """The stored row as the translators read it: plain data."""
    return StoredDelivery(
        topic=event.topic,
        body=event.body,
        received_at=event.received_at or utcnow(),
        triggered_at=event.triggered_at,
    )
