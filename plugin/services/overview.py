"""The Overview: what the app is doing for this store, and what needs the merchant.

One screen a store owner reads in ten seconds. Every figure is one SQL aggregate scoped to the
shop; what needs the merchant is listed most urgent first, each with what to do about it, and
says nothing when all is well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugin.models import (
    BackorderLine,
    BackorderStatus,
    BadgeKind,
    InboxStatus,
    InstallStatus,
    MailStatus,
    NotifySubscription,
    Order,
    OrderLine,
    OutboxMail,
    Shop,
    Variant,
    VariantBadge,
    WebhookEvent,
    utcnow,
)
from plugin.models.notify import WAITING
from plugin.services.shop_time import shop_today
from plugin.services.support import local_moment

OWING = (BackorderStatus.OPEN, BackorderStatus.ALLOCATED)
MAIL_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Attention:
    """One thing the merchant should look at: how urgent, what, and what to do."""

    tone: str  # "critical" | "warning"
    title: str
    action: str
    count: int = 0

    def as_json(self) -> dict:
        return {"tone": self.tone, "title": self.title, "action": self.action, "count": self.count}


@dataclass
class Overview:
    badges: dict[str, int]
    open_lines: int
    units_owed: int
    mails_sent: int  # in the last 7 days
    waiting_sign_ups: int
    last_webhook_local: str | None
    attention: list[Attention] = field(default_factory=list)

    @property
    def variants(self) -> int:
        return sum(self.badges.values())

    def summary(self) -> str:
        """What the app is doing, in one sentence."""
        if not self.variants:
            return "No variants synced yet: badges appear once the catalogue is read."
        owed = (
            f"{self.units_owed} unit{'s' if self.units_owed != 1 else ''} owed to customers on "
            f"{self.open_lines} backordered line{'s' if self.open_lines != 1 else ''}"
            if self.open_lines
            else "no customer waiting for backordered stock"
        )
        return (
            f"Badges on {self.variants} variant{'s' if self.variants != 1 else ''}: "
            f"{self.badges.get('in_stock', 0)} in stock, {self.badges.get('backorder', 0)} on "
            f"backorder, {self.badges.get('out_of_stock', 0)} out of stock; {owed}."
        )

    def as_json(self) -> dict:
        return {
            "summary": self.summary(),
            "badges": self.badges,
            "open_lines": self.open_lines,
            "units_owed": self.units_owed,
            "mails_sent_7_days": self.mails_sent,
            "waiting_sign_ups": self.waiting_sign_ups,
            "last_webhook_local": self.last_webhook_local,
            "attention": [item.as_json() for item in self.attention],
        }


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def overview(session: Session, shop: Shop, now: datetime | None = None) -> Overview:
    now = now or utcnow()
    badges = {
        kind.value: 0 for kind in (BadgeKind.IN_STOCK, BadgeKind.BACKORDER, BadgeKind.OUT_OF_STOCK)
    }
    for state, count in session.execute(
        select(VariantBadge.state, func.count())
        .where(VariantBadge.shop_id == shop.id)
        .group_by(VariantBadge.state)
    ):
        if state.value in badges:
            badges[state.value] = count
    lines, owed = session.execute(
        select(
            func.count(BackorderLine.id),
            func.coalesce(
                func.sum(BackorderLine.open_quantity + BackorderLine.allocated_quantity), 0
            ),
        ).where(BackorderLine.shop_id == shop.id, BackorderLine.status.in_(OWING))
    ).one()
    mails = session.scalar(
        select(func.count(OutboxMail.id)).where(
            OutboxMail.shop_id == shop.id,
            OutboxMail.status == MailStatus.SENT,
            OutboxMail.sent_at >= now - MAIL_WINDOW,
        )
    )
    sign_ups = session.scalar(
        select(func.count(NotifySubscription.id)).where(
            NotifySubscription.shop_id == shop.id, NotifySubscription.status.in_(WAITING)
        )
    )
    last = session.scalar(
        select(func.max(WebhookEvent.received_at)).where(WebhookEvent.shop_id == shop.id)
    )
    result = Overview(
        badges=badges,
        open_lines=lines,
        units_owed=int(owed),
        mails_sent=mails or 0,
        waiting_sign_ups=sign_ups or 0,
        last_webhook_local=local_moment(last, shop.timezone),
    )
    result.attention = needs_the_merchant(session, shop, now)
    return result


def needs_the_merchant(session: Session, shop: Shop, now: datetime) -> list[Attention]:
    """Most urgent first; empty when nothing needs the merchant."""
    items: list[Attention] = []
    if shop.status == InstallStatus.NEEDS_REAUTH:
        items.append(
            Attention(
                "critical",
                "The store stopped accepting the app's access"
                + (f": {shop.reauth_reason}" if shop.reauth_reason else "."),
                "Open the app from your store's admin and approve it again; badges wait until "
                "then.",
            )
        )
    if shop.registration_error:
        items.append(
            Attention(
                "critical",
                "The store refused the app's webhook or script registration.",
                f"Reopen the app to try again. The store said: {shop.registration_error[:200]}",
            )
        )
    failed = session.scalar(
        select(func.count(WebhookEvent.id)).where(
            WebhookEvent.shop_id == shop.id, WebhookEvent.status == InboxStatus.FAILED
        )
    )
    if failed:
        items.append(
            Attention(
                "critical",
                f"{_plural(failed, 'store update', 'store updates')} could not be processed.",
                "The app retries them; the support section shows each error.",
                failed,
            )
        )
    no_contact = session.scalar(
        select(func.count(BackorderLine.id))
        .join(OrderLine, OrderLine.id == BackorderLine.order_line_id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(
            BackorderLine.shop_id == shop.id,
            BackorderLine.status.in_(OWING),
            func.coalesce(Order.customer_email, "") == "",
        )
    )
    if no_contact:
        items.append(
            Attention(
                "warning",
                f"{_plural(no_contact, 'backordered line has', 'backordered lines have')} no "
                "customer email, so nobody can be told when it ships or slips.",
                "Contact these customers yourself (the orders are in your store's admin).",
                no_contact,
            )
        )
    today = shop_today(shop.timezone, now)
    passed = session.scalar(
        select(func.count(Variant.id)).where(
            Variant.shop_id == shop.id,
            Variant.eta_override.is_not(None),
            Variant.eta_override < today,
        )
    )
    if passed:
        items.append(
            Attention(
                "warning",
                f"{_plural(passed, 'variant has a fixed ETA', 'variants have fixed ETAs')} in "
                "the past.",
                "Set a new date or clear it on the Variants page; until then the lead time "
                "applies.",
                passed,
            )
        )
    bounced = session.scalar(
        select(func.count(OutboxMail.id)).where(
            OutboxMail.shop_id == shop.id,
            OutboxMail.status == MailStatus.BOUNCED,
            OutboxMail.created_at >= now - timedelta(days=30),
        )
    )
    if bounced:
        items.append(
            Attention(
                "warning",
                f"{_plural(bounced, 'customer email', 'customer emails')} bounced in the last "
                "30 days.",
                "Check those addresses with the customers; the app stops writing to them.",
                bounced,
            )
        )
    return items
