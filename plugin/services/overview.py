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
from plugin.services.admin_text import _, moment, ngettext
from plugin.services.shop_time import shop_today

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
            return _("No variants synced yet: badges appear once the catalogue is read.")
        if self.open_lines:
            owed = ngettext(
                "%(num)s unit owed to customers on %(lines)s",
                "%(num)s units owed to customers on %(lines)s",
                self.units_owed,
                lines=ngettext(
                    "%(num)s backordered line", "%(num)s backordered lines", self.open_lines
                ),
            )
        else:
            owed = _("no customer waiting for backordered stock")
        return ngettext(
            "Badges on %(num)s variant: %(in_stock)s in stock, %(backorder)s on backorder, "
            "%(out_of_stock)s out of stock; %(owed)s.",
            "Badges on %(num)s variants: %(in_stock)s in stock, %(backorder)s on backorder, "
            "%(out_of_stock)s out of stock; %(owed)s.",
            self.variants,
            in_stock=self.badges.get("in_stock", 0),
            backorder=self.badges.get("backorder", 0),
            out_of_stock=self.badges.get("out_of_stock", 0),
            owed=owed,
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
        last_webhook_local=moment(last, shop.timezone),
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
                _(
                    "The store stopped accepting the app's access: %(reason)s",
                    reason=shop.reauth_reason,
                )
                if shop.reauth_reason
                else _("The store stopped accepting the app's access."),
                _(
                    "Open the app from your store's admin and approve it again; badges wait "
                    "until then."
                ),
            )
        )
    if shop.registration_error:
        items.append(
            Attention(
                "critical",
                _("The store refused the app's webhook or script registration."),
                _(
                    "Reopen the app to try again. The store said: %(error)s",
                    error=shop.registration_error[:200],
                ),
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
                ngettext(
                    "%(num)s store update could not be processed.",
                    "%(num)s store updates could not be processed.",
                    failed,
                ),
                _("The app retries them; the support section shows each error."),
                failed,
            )
        )
    set_aside = session.scalar(
        select(func.count(WebhookEvent.id)).where(
            WebhookEvent.shop_id == shop.id, WebhookEvent.status == InboxStatus.DEAD_LETTER
        )
    )
    if set_aside:
        items.append(
            Attention(
                "critical",
                ngettext(
                    "%(num)s store update could not be read and was set aside.",
                    "%(num)s store updates could not be read and were set aside.",
                    set_aside,
                ),
                _("They are not retried. Contact support, who can see each one and its error."),
                set_aside,
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
                ngettext(
                    "%(num)s backordered line has no customer email, so nobody can be told "
                    "when it ships or slips.",
                    "%(num)s backordered lines have no customer email, so nobody can be told "
                    "when they ship or slip.",
                    no_contact,
                ),
                _("Contact these customers yourself (the orders are in your store's admin)."),
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
                ngettext(
                    "%(num)s variant has a fixed ETA in the past.",
                    "%(num)s variants have fixed ETAs in the past.",
                    passed,
                ),
                _(
                    "Set a new date or clear it on the Variants page; until then the lead time "
                    "applies."
                ),
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
                ngettext(
                    "%(num)s customer email bounced in the last 30 days.",
                    "%(num)s customer emails bounced in the last 30 days.",
                    bounced,
                ),
                _("Check those addresses with the customers; the app stops writing to them."),
                bounced,
            )
        )
    return items
