"""Privacy requests: what the app holds about a customer, and deleting it.

The app holds customer data only on backorder lines (email, order ids). A shop redact deletes
everything the app stored for the shop, settings included.
"""

from __future__ import annotations

import json

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from domain import events as ev
from plugin.models import BackorderLine, Shop, WebhookEvent


def _customer_lines(session: Session, shop: Shop, email: str | None, order_ids: tuple[str, ...]):
    conditions = []
    if email:
        conditions.append(BackorderLine.customer_email == email)
    if order_ids:
        conditions.append(BackorderLine.order_id.in_(order_ids))
    if not conditions:
        return select(BackorderLine).where(BackorderLine.id.is_(None))
    return select(BackorderLine).where(BackorderLine.shop_id == shop.id, or_(*conditions))


def customer_data(session: Session, shop: Shop, email: str | None, order_ids: tuple[str, ...]):
    lines = session.scalars(_customer_lines(session, shop, email, order_ids)).all()
    return {
        "shop": shop.domain,
        "customer_email": email,
        "backorder_lines": [
            {
                "order_id": line.order_id,
                "order_name": line.order_name,
                "line_id": line.line_id,
                "variant_id": line.variant.platform_id,
                "quantity": line.quantity,
                "customer_email": line.customer_email,
                "ordered_at": line.ordered_at.isoformat(),
                "status": line.status.value,
            }
            for line in lines
        ],
    }


def handle(session: Session, shop: Shop, event, current_event_id: int) -> str:
    match event:
        case ev.CustomerDataRequest():
            report = customer_data(session, shop, event.customer_email, event.order_ids)
            return "data request: " + json.dumps(report, sort_keys=True)
        case ev.CustomerRedact():
            ids = [
                line.id
                for line in session.scalars(
                    _customer_lines(session, shop, event.customer_email, event.order_ids)
                )
            ]
            if ids:
                session.execute(delete(BackorderLine).where(BackorderLine.id.in_(ids)))
            return f"customer redacted: {len(ids)} backorder line(s) deleted"
        case ev.ShopRedact():
            # Stored webhook bodies carry customer data too; keep only this request's own row.
            session.execute(
                delete(WebhookEvent).where(
                    WebhookEvent.shop_id == shop.id, WebhookEvent.id != current_event_id
                )
            )
            session.delete(shop)
            return "shop redacted: all of its data deleted"
    raise TypeError(f"not a compliance event: {event!r}")
