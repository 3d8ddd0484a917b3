"""Privacy requests: what the app holds about a customer, and erasing it.

The app holds customer data on orders (email, name, locale) and in the stored bodies of order
webhooks. A data request is answered with a report the merchant downloads from the admin: the
person's orders, their backorder lines and each line's timeline, and the mails sent to them. A
customer redact erases the person from the orders, deletes the mails sent to them and empties
the stored bodies that named them; the ledger's quantities
stay, anonymous, so other customers' places in the queue are unchanged. A shop redact deletes
everything the app stored for the shop, settings included.

Notify-me sign-ups are found by address (stored lower-case). They are reported with their
consent records (the evidence the shop keeps of the shopper's agreement) and deleted, not
anonymised, on redaction: a sign-up without its address is of no use to anyone.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from domain import events as ev
from plugin.models import (
    BackorderLine,
    DataRequestReport,
    InboxStatus,
    NotifySubscription,
    Order,
    OrderLine,
    OutboxMail,
    Restock,
    Shop,
    Variant,
    WebhookEvent,
    utcnow,
)


def _customer_orders(session: Session, shop: Shop, email: str | None, order_ids: tuple[str, ...]):
    conditions = []
    if email:
        conditions.append(Order.customer_email == email)
    if order_ids:
        conditions.append(Order.platform_id.in_(order_ids))
    if not conditions:
        return []
    return list(
        session.scalars(
            select(Order).where(Order.shop_id == shop.id, or_(*conditions)).order_by(Order.id)
        )
    )


def _customer_mails(shop: Shop, email: str | None, orders: list[Order]):
    """The outbox rows sent (or waiting) to the person: by address, or about their orders."""
    conditions = []
    if email:
        # Notify-me mails go to the address as stored (lower-case); the platform may not.
        conditions.append(func.lower(OutboxMail.recipient) == email.strip().lower())
    if orders:
        conditions.append(OutboxMail.order_id.in_([o.id for o in orders]))
    if not conditions:
        return None
    return (OutboxMail.shop_id == shop.id) & or_(*conditions)


def customer_data(session: Session, shop: Shop, email: str | None, order_ids: tuple[str, ...]):
    orders = _customer_orders(session, shop, email, order_ids)
    lines = {
        line.order_line_id: line
        for line in session.scalars(
            select(BackorderLine)
            .join(OrderLine, OrderLine.id == BackorderLine.order_line_id)
            .where(OrderLine.order_id.in_([o.id for o in orders]))
        )
    }
    backorder_lines = []
    for order in orders:
        for order_line in order.lines:
            line = lines.get(order_line.id)
            if line is None:
                continue
            backorder_lines.append(
                {
                    "order_id": order.platform_id,
                    "order_name": order.name,
                    "line_id": order_line.platform_id,
                    "variant_id": line.variant.platform_id,
                    "product": line.variant.product.title if line.variant.product else "",
                    "variant": line.variant.title,
                    "quantity": line.quantity,
                    "status": line.status.value,
                    "open": line.open_quantity,
                    "allocated": line.allocated_quantity,
                    "fulfilled": line.fulfilled_quantity,
                    "cancelled": line.cancelled_quantity,
                    "ordered_at": line.ordered_at.isoformat(),
                    "timeline": [
                        {
                            "at": s.at.isoformat(),
                            "step": s.kind,
                            "units": s.quantity,
                            "cause": s.cause,
                        }
                        for s in line.steps
                    ],
                }
            )
    return {
        "shop": shop.domain,
        "customer_email": email,
        "orders": [
            {
                "order_id": o.platform_id,
                "order_name": o.name,
                "placed_at": o.placed_at.isoformat(),
                "customer_email": o.customer_email,
                "customer_name": o.customer_name,
                "customer_locale": o.customer_locale,
                "cancelled_at": o.cancelled_at.isoformat() if o.cancelled_at else None,
            }
            for o in orders
        ],
        "backorder_lines": backorder_lines,
        "mails": _mails_report(session, shop, email, orders),
        "notify_subscriptions": _sign_ups_report(session, shop, email),
    }


def _sign_ups(shop: Shop, email: str | None):
    """The person's notify-me sign-ups (addresses are stored lower-case), or None."""
    address = (email or "").strip().lower()
    if not address:
        return None
    return (NotifySubscription.shop_id == shop.id) & (NotifySubscription.email == address)


def _at(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _sign_ups_report(session: Session, shop: Shop, email: str | None) -> list[dict]:
    mine = _sign_ups(shop, email)
    if mine is None:
        return []
    rows = session.execute(
        select(NotifySubscription, Variant)
        .join(Variant, Variant.id == NotifySubscription.variant_id)
        .where(mine)
        .order_by(NotifySubscription.created_at, NotifySubscription.id)
    ).all()
    return [
        {
            "email": sub.email,
            "variant_id": variant.platform_id,
            "product": variant.product.title if variant.product else "",
            "variant": variant.title,
            "sku": variant.sku or "",
            "status": sub.status.value,
            "locale": sub.locale,
            "signed_up_at": _at(sub.created_at),
            "confirmed_at": _at(sub.confirmed_at),
            "alerted_at": _at(sub.alerted_at),
            "unsubscribed_at": _at(sub.unsubscribed_at),
            "consent": {
                "text": sub.consent_text,
                "version": sub.consent_version,
                "form": sub.form,
                "page": sub.page_url,
                "at": _at(sub.created_at),
                "ip_truncated": sub.ip_truncated,
                "user_agent": sub.user_agent,
                "double_opt_in": sub.double_opt_in,
            },
        }
        for sub, variant in rows
    ]


def _delete_sign_ups(session: Session, condition) -> int:
    """Delete sign-ups; mails that answered them keep no link to them (as ON DELETE SET NULL
    does, said here too so it holds whatever the database enforces)."""
    ids = select(NotifySubscription.id).where(condition).scalar_subquery()
    session.execute(
        update(OutboxMail)
        .where(OutboxMail.notify_subscription_id.in_(ids))
        .values(notify_subscription_id=None)
        .execution_options(synchronize_session=False)
    )
    result = session.execute(
        delete(NotifySubscription).where(condition).execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def _mails_report(session: Session, shop: Shop, email: str | None, orders: list[Order]):
    mine = _customer_mails(shop, email, orders)
    if mine is None:
        return []
    return [
        {
            "kind": m.kind,
            "to": m.recipient,
            "subject": m.subject,
            "text": m.text_body,
            "status": m.status.value,
            "created_at": m.created_at.isoformat(),
            "sent_at": m.sent_at.isoformat() if m.sent_at else None,
        }
        for m in session.scalars(select(OutboxMail).where(mine).order_by(OutboxMail.id))
    ]


def handle(session: Session, shop: Shop, event, current_event_id: int) -> str:
    match event:
        case ev.CustomerDataRequest():
            report = customer_data(session, shop, event.customer_email, event.order_ids)
            record = DataRequestReport(
                shop_id=shop.id,
                customer_email=event.customer_email,
                order_ids=list(event.order_ids),
                requested_at=event.occurred_at,
                webhook_event_id=current_event_id,
                report=report,
            )
            session.add(record)
            session.flush()
            return (
                f"data request: report {record.id} ready to download "
                f"({len(report['orders'])} order(s), {len(report['backorder_lines'])} line(s), "
                f"{len(report['notify_subscriptions'])} notify-me sign-up(s))"
            )
        case ev.CustomerRedact():
            orders = _customer_orders(session, shop, event.customer_email, event.order_ids)
            mine = _customer_mails(shop, event.customer_email, orders)
            mails = 0
            if mine is not None:
                mails = (
                    session.execute(
                        delete(OutboxMail).where(mine).execution_options(synchronize_session=False)
                    ).rowcount
                    or 0
                )
            signed = _sign_ups(shop, event.customer_email)
            sign_ups = _delete_sign_ups(session, signed) if signed is not None else 0
            for order in orders:
                order.customer_email = None
                order.customer_name = None
                order.customer_locale = None
            purged = purge_bodies(session, shop, order_ids=[o.platform_id for o in orders])
            return (
                f"customer redacted: {len(orders)} order(s) anonymised, "
                f"{purged} stored webhook(s) emptied, {mails} mail(s) deleted, "
                f"{sign_ups} notify-me sign-up(s) deleted"
            )
        case ev.ShopRedact():
            # Stored webhook bodies carry customer data too; keep only this request's own row.
            session.execute(
                WebhookEvent.__table__.delete().where(
                    WebhookEvent.shop_id == shop.id, WebhookEvent.id != current_event_id
                )
            )
            # The database cascades these from the shop too; deleted first, explicitly, so
            # sign-ups (with their consent records) go whatever the database enforces.
            _delete_sign_ups(session, NotifySubscription.shop_id == shop.id)
            session.execute(delete(Restock).where(Restock.shop_id == shop.id))
            session.delete(shop)
            return "shop redacted: all of its data deleted"
    raise TypeError(f"not a compliance event: {event!r}")


def purge_bodies(
    session: Session,
    shop: Shop | None = None,
    *,
    order_ids: list[str] | None = None,
    older_than: datetime | None = None,
) -> int:
    """Empty the stored bodies of processed order webhooks (they name customers).

    Only finished deliveries are emptied: one still pending or failed keeps its body until it
    is processed, so an acknowledged webhook is never lost.
    """
    query = update(WebhookEvent).where(
        WebhookEvent.order_id.is_not(None),
        WebhookEvent.body_purged_at.is_(None),
        WebhookEvent.status.in_([InboxStatus.PROCESSED, InboxStatus.IGNORED]),
    )
    if shop is not None:
        query = query.where(WebhookEvent.shop_id == shop.id)
    if order_ids is not None:
        if not order_ids:
            return 0
        query = query.where(WebhookEvent.order_id.in_(order_ids))
    if older_than is not None:
        query = query.where(WebhookEvent.received_at < older_than)
    result = session.execute(
        query.values(body=b"", body_purged_at=utcnow()).execution_options(synchronize_session=False)
    )
    return result.rowcount or 0


def purge_expired_bodies(session: Session, retention: timedelta) -> int:
    """Past the retention period: processed order deliveries, and dead letters of any topic.
    A dead letter was never translated, so it carries no order id to match a redaction by, and
    it may still name a customer; it keeps its headers, error and attempts for support."""
    cutoff = utcnow() - retention
    dead = session.execute(
        update(WebhookEvent)
        .where(
            WebhookEvent.status == InboxStatus.DEAD_LETTER,
            WebhookEvent.body_purged_at.is_(None),
            WebhookEvent.received_at < cutoff,
        )
        .values(body=b"", body_purged_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    return purge_bodies(session, older_than=cutoff) + (dead.rowcount or 0)
