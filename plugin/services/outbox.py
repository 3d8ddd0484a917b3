"""Queueing customer mails: a row first, in the caller's transaction, once per idempotency key.

`queue_mail` never sends: the caller commits its change and the mail together, then
`plugin.jobs.send_pending_mails` hands the new rows to the `emails` queue. A key already
queued is left as it is, so a retried job or a redelivered webhook adds nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from plugin.models import MailStatus, OutboxMail, Shop, SuppressedAddress, utcnow

_INSERTS = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


@dataclass(frozen=True)
class Composed:
    """A mail as the customer will read it."""

    subject: str
    text: str
    html: str
    locale: str = "en"
    # Set when the merchant's template could not be used and the default was sent instead:
    # what the merchant should be told (see mail_templates.compose).
    warning: str | None = None


def queue_mail(
    session: Session,
    shop: Shop,
    *,
    kind: str,
    recipient: str,
    key: str,
    mail: Composed,
    send_after: datetime | None = None,
    order_id: int | None = None,
    backorder_line_id: int | None = None,
    notify_subscription_id: int | None = None,
    unsubscribe_url: str | None = None,
) -> int | None:
    """The new mail's id, or None when this key was queued before (nothing is added)."""
    insert = _INSERTS[session.get_bind().dialect.name]
    statement = (
        insert(OutboxMail)
        .values(
            shop_id=shop.id,
            kind=kind,
            recipient=recipient,
            locale=mail.locale,
            subject=mail.subject,
            text_body=mail.text,
            html_body=mail.html,
            idempotency_key=key[:255],
            status=MailStatus.PENDING,
            attempts=0,
            send_after=send_after or utcnow(),
            created_at=utcnow(),
            order_id=order_id,
            backorder_line_id=backorder_line_id,
            notify_subscription_id=notify_subscription_id,
            unsubscribe_url=unsubscribe_url,
        )
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(OutboxMail.id)
    )
    return session.execute(statement).scalar()


def is_suppressed(session: Session, shop_id: int, email: str) -> bool:
    return (
        session.scalar(
            select(SuppressedAddress.id).where(
                SuppressedAddress.shop_id == shop_id,
                SuppressedAddress.email == email.strip().lower(),
            )
        )
        is not None
    )


def due_mail_ids(
    session: Session, now: datetime | None = None, limit: int = 1000, shop_id: int | None = None
) -> list[int]:
    """Pending mails whose quiet period is over (of one shop, or all): what the emails queue
    should be sending."""
    query = select(OutboxMail.id).where(
        OutboxMail.status == MailStatus.PENDING, OutboxMail.send_after <= (now or utcnow())
    )
    if shop_id is not None:
        query = query.where(OutboxMail.shop_id == shop_id)
    return list(session.scalars(query.order_by(OutboxMail.id).limit(limit)))
