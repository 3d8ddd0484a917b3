"""What support staff look at first: recent badge changes and how the shop's webhooks fare.

Shared by every platform's embedded admin page, so a support conversation reads the same on
every store.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from plugin.models import (
    BadgeTransition,
    DataRequestReport,
    InboxStatus,
    Shop,
    Variant,
    WebhookEvent,
)
from plugin.services import admin_text
from plugin.services.shop_time import format_eta

RECENT_TRANSITIONS = 20
RECENT_FAILURES = 5


def local_moment(moment: datetime | None, timezone: str | None) -> str | None:
    """A moment as the merchant reads it: in the shop's zone, with the zone's abbreviation
    ("2026-11-30 14:05 CET"), so nobody has to convert from UTC, and written the way the
    reader's language writes dates ("30 nov. 2026 14:05 CET" in French). The ISO value stays
    alongside for machines."""
    return admin_text.moment(moment, timezone)


def recent_transitions(session: Session, shop: Shop, limit: int = RECENT_TRANSITIONS) -> list[dict]:
    rows = session.execute(
        select(BadgeTransition, Variant)
        .join(Variant, Variant.id == BadgeTransition.variant_id)
        .where(BadgeTransition.shop_id == shop.id)
        # A support "heal now" that found nothing to fix is in the variant's timeline, not here.
        .where(
            or_(
                BadgeTransition.staff_user.is_(None),
                BadgeTransition.from_state.is_distinct_from(BadgeTransition.to_state),
                BadgeTransition.from_eta.is_distinct_from(BadgeTransition.to_eta),
            )
        )
        .order_by(BadgeTransition.id.desc())
        .limit(limit)
    ).all()
    return [
        {
            "at": t.created_at.isoformat(),
            "at_local": local_moment(t.created_at, shop.timezone),
            "product": v.product.title if v.product else "",
            "variant": f"{v.product.title} · {v.title}" if v.product else v.title,
            "variant_title": v.title,
            "sku": v.sku or "",
            "from": t.from_state.value if t.from_state else None,
            "to": t.to_state.value,
            "eta": format_eta(t.to_eta),
            "label": t.label,
            "cause": t.cause,
            "reason": t.reason,
        }
        for t, v in rows
    ]


def inbox_health(session: Session, shop: Shop) -> dict:
    """Events per status (every status listed), when the last arrived, the latest failures."""
    counts = dict(
        session.execute(
            select(WebhookEvent.status, func.count())
            .where(WebhookEvent.shop_id == shop.id)
            .group_by(WebhookEvent.status)
        ).all()
    )
    last = session.scalar(
        select(func.max(WebhookEvent.received_at)).where(WebhookEvent.shop_id == shop.id)
    )
    failing = session.scalars(
        select(WebhookEvent)
        .where(
            WebhookEvent.shop_id == shop.id,
            WebhookEvent.status.in_([InboxStatus.FAILED, InboxStatus.DEAD_LETTER]),
        )
        .order_by(WebhookEvent.id.desc())
        .limit(RECENT_FAILURES)
    ).all()
    return {
        "counts": {status.value: counts.get(status, 0) for status in InboxStatus},
        "last_received_at": last.isoformat() if last else None,
        "last_received_at_local": local_moment(last, shop.timezone),
        "failing": [
            {"topic": e.topic, "attempts": e.attempts, "error": (e.last_error or "")[:300]}
            for e in failing
        ],
    }


def data_requests(session: Session, shop: Shop, limit: int = 20) -> list[dict]:
    """Privacy reports the platform asked for, newest first, for the merchant to download."""
    rows = session.scalars(
        select(DataRequestReport)
        .where(DataRequestReport.shop_id == shop.id)
        .order_by(DataRequestReport.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": r.id,
            "requested_at": r.requested_at.isoformat(),
            "requested_at_local": local_moment(r.requested_at, shop.timezone),
            "customer_email": r.customer_email,
            "orders": len((r.report or {}).get("orders") or []),
            "lines": len((r.report or {}).get("backorder_lines") or []),
        }
        for r in rows
    ]


def data_request(session: Session, shop: Shop, report_id: int) -> DataRequestReport | None:
    """One of this shop's reports; another shop's does not exist for it."""
    return session.scalars(
        select(DataRequestReport).where(
            DataRequestReport.shop_id == shop.id, DataRequestReport.id == report_id
        )
    ).first()
