"""Back-in-stock alerts: a restock is opened when a waited-for variant comes back, then alerts
its subscribers fairly, batch by batch.

- `open_restock` runs inside the badge decision's transaction, when a variant someone waits
  for turns "in stock"; it writes a row, never a job.
- `run_batch` alerts the next batch if it is due: it locks the restock row, re-reads the
  variant's stock (the mirror the webhooks keep), alerts at most N per unit in sign-up order,
  marks each one alerted in the same transaction as its mail (whose key is the sign-up, so no
  one is ever mailed twice), and sets when the next batch may run. A sell-out closes it.
- Jobs take the restock's id; the clock finds due restocks whose job was lost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from domain.badges import BadgeKind
from plugin.models import (
    NotifySubscription,
    Restock,
    RestockStatus,
    Shop,
    SubscriptionStatus,
    Variant,
    VariantBadge,
    utcnow,
)
from plugin.services import mail_templates
from plugin.services.fair_alerts import batch_size
from plugin.services.notify_me import variant_name
from plugin.services.outbox import queue_mail


@dataclass
class BatchResult:
    restock_id: int
    note: str
    mail_ids: list[int] = field(default_factory=list)
    # When the next batch may run (None: the restock is closed).
    next_at: datetime | None = None
    step: int = 0


def _active(shop_id: int, variant_id: int):
    return (
        NotifySubscription.shop_id == shop_id,
        NotifySubscription.variant_id == variant_id,
        NotifySubscription.status == SubscriptionStatus.ACTIVE,
    )


def open_restock(
    session: Session, shop: Shop, variant: Variant, now: datetime | None = None
) -> Restock | None:
    """Called when `variant` turns in stock: a restock row if anyone confirmed waits for it
    and none is open yet (a redelivered webhook finds the open one and adds nothing)."""
    now = now or utcnow()
    waiting = session.scalar(select(NotifySubscription.id).where(*_active(shop.id, variant.id)))
    if waiting is None:
        return None
    open_one = session.scalar(
        select(Restock).where(
            Restock.variant_id == variant.id, Restock.status == RestockStatus.OPEN
        )
    )
    if open_one is not None:
        return open_one
    restock = Restock(
        shop_id=shop.id,
        variant_id=variant.id,
        status=RestockStatus.OPEN,
        units_at_start=units_in_stock(variant) or 0,
        started_at=now,
        next_batch_at=now,
        batches=0,
        alerted=0,
    )
    session.add(restock)
    session.flush()
    return restock


def after_confirmation(
    session: Session, subscription: NotifySubscription, now: datetime | None = None
) -> Restock | None:
    """A shopper confirmed their address after the variant came back: they join the alerts
    (behind everyone who signed up before them) instead of waiting for the next restock."""
    badge = session.get(VariantBadge, subscription.variant_id)
    if badge is None or badge.state != BadgeKind.IN_STOCK:
        return None
    shop = session.get(Shop, subscription.shop_id)
    variant = session.get(Variant, subscription.variant_id)
    return open_restock(session, shop, variant, now)


def units_in_stock(variant: Variant) -> int | None:
    """What a new shopper can buy now (None: the store doesn't count this variant's stock).
    Units owed to backorder customers are already taken off by the platform's count."""
    if not variant.tracked:
        return None
    return max(0, variant.inventory_total)


def product_url(shop: Shop, variant: Variant, page_url: str | None) -> str:
    """The page the shopper signed up on, pointing at the variant (`?variant=` is what most
    themes select a variant by; the rest ignore it)."""
    base = page_url or (shop.storefront_origins[0] if shop.storefront_origins else "")
    if not base:
        base = f"https://{shop.domain}"
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "variant"]
    query.append(("variant", variant.platform_id))
    return urlunsplit(parts._replace(query=urlencode(query), fragment=""))


# The most one job alerts: a bigger batch continues in the next job at once, so the first
# mails leave within a second and no job nears the queue's time limit.
CHUNK = 1000


def run_batch(
    session: Session, restock_id: int, *, app_url: str, now: datetime | None = None
) -> BatchResult:
    """Alert the next chunk of one restock's due batch (in the caller's transaction)."""
    now = now or utcnow()
    restock = session.scalars(
        select(Restock).where(Restock.id == restock_id).with_for_update()
    ).first()
    if restock is None or restock.status != RestockStatus.OPEN:
        return BatchResult(restock_id, "closed")
    if restock.next_batch_at > now:
        return BatchResult(
            restock_id, "not due yet", next_at=restock.next_batch_at, step=restock.steps
        )
    shop = session.get(Shop, restock.shop_id)
    variant = session.get(Variant, restock.variant_id)
    settings = shop.settings if shop else None
    if shop is None or variant is None or not shop.is_active:
        return _close(restock, RestockStatus.DONE, now, "the shop or variant is gone")
    # Turning the form off stops new sign-ups, not the alerts owed to those already waiting.
    if settings is None or not settings.email_back_in_stock:
        return _close(restock, RestockStatus.DONE, now, "back-in-stock alerts are off")
    badge = session.get(VariantBadge, variant.id)
    units = units_in_stock(variant)
    if badge is None or badge.state != BadgeKind.IN_STOCK or units == 0:
        return _close(restock, RestockStatus.SOLD_OUT, now, "sold out again")

    waiting = session.scalar(
        select(func.count(NotifySubscription.id)).where(*_active(shop.id, variant.id))
    )
    if restock.batch_remaining <= 0:  # a new batch: its size from the stock right now
        restock.batch_remaining = batch_size(units, settings.notify_rate_per_unit, waiting or 0)
        restock.batches += 1
    size = min(CHUNK, restock.batch_remaining, waiting or 0)
    query = (
        select(NotifySubscription)
        .where(*_active(shop.id, variant.id))
        .order_by(NotifySubscription.created_at, NotifySubscription.id)
        .limit(size)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    result = BatchResult(restock.id, "")
    name = variant_name(variant)
    show_units = units if settings.notify_show_stock else None
    templates: dict = {}
    alerted: list[int] = []
    with session.no_autoflush:
        batch = list(session.scalars(query)) if size else []
        for subscription in batch:
            unsubscribe = f"{app_url.rstrip('/')}/notify/unsubscribe/{subscription.token}"
            mail = mail_templates.compose(
                session,
                shop,
                "back_in_stock",
                subscription.locale,
                {
                    "product": name,
                    "product_url": product_url(shop, variant, subscription.page_url),
                    "units_left": show_units,
                    "unsubscribe_url": unsubscribe,
                },
                templates=templates,
            )
            mail_id = queue_mail(
                session,
                shop,
                kind="back_in_stock",
                recipient=subscription.email,
                key=f"back_in_stock:{subscription.id}",
                mail=mail,
                notify_subscription_id=subscription.id,
                unsubscribe_url=unsubscribe,
            )
            alerted.append(subscription.id)
            if mail_id is not None:
                result.mail_ids.append(mail_id)
    if alerted:  # one statement for the chunk, not one per sign-up
        session.execute(
            update(NotifySubscription)
            .where(NotifySubscription.id.in_(alerted))
            .values(status=SubscriptionStatus.ALERTED, alerted_at=now, restock_id=restock.id)
            .execution_options(synchronize_session=False)
        )
    restock.steps += 1
    restock.alerted += len(batch)
    restock.batch_remaining = max(0, restock.batch_remaining - len(batch))
    result.step = restock.steps
    left = (waiting or 0) - len(batch)
    if left <= 0:
        _close(restock, RestockStatus.DONE, now, "everyone waiting was alerted")
        result.note = f"alerted {len(batch)}; everyone waiting was alerted"
        return result
    if restock.batch_remaining > 0:  # the same batch goes on in the next job, now
        result.next_at = restock.next_batch_at
        result.note = f"alerted {len(batch)}; {restock.batch_remaining} more in this batch"
        return result
    restock.next_batch_at = now + timedelta(minutes=max(1, settings.notify_batch_minutes))
    result.next_at = restock.next_batch_at
    result.note = f"alerted {len(batch)} of {waiting} waiting ({units} in stock); next batch due"
    return result


def _close(restock: Restock, status: RestockStatus, now: datetime, note: str) -> BatchResult:
    restock.status = status
    restock.finished_at = now
    restock.batch_remaining = 0
    return BatchResult(restock.id, note, step=restock.steps)


def due_restocks(
    session: Session, now: datetime | None = None, shop_id: int | None = None
) -> list[tuple[int, int]]:
    """(restock id, its job count) of every open restock whose next batch is due."""
    query = select(Restock.id, Restock.steps).where(
        Restock.status == RestockStatus.OPEN, Restock.next_batch_at <= (now or utcnow())
    )
    if shop_id is not None:
        query = query.where(Restock.shop_id == shop_id)
    return [(row.id, row.steps) for row in session.execute(query.order_by(Restock.id))]
