"""The support desk's variant page: stock per location, the badge and why, who waits for it, and
one timeline that joins what happened to it: webhook received → decision → pushed to the store →
mails sent. And "heal now": this one variant reconciled with its platform on demand.

No Flask here: the view renders and commits (one commit boundary per request).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, or_, select, true
from sqlalchemy.orm import Session

from domain.badges import BadgeKind
from plugin.models import (
    BackorderLine,
    BackorderStep,
    BadgePushRecord,
    BadgeTransition,
    InventoryLevel,
    NotifySubscription,
    Order,
    OrderLine,
    OutboxMail,
    Shop,
    StoreLocation,
    Variant,
    VariantBadge,
    WebhookEvent,
    utcnow,
)
from plugin.models.notify import WAITING
from plugin.platforms import connector_for
from plugin.services import admin_text, catalog, customer_mails, ledger
from plugin.services.admin_text import _
from plugin.services.badging import decide_for_variant, refresh_badge
from plugin.services.shop_time import shop_today

# The most recent timeline entries one page shows; "earlier" pages on from the oldest shown.
TIMELINE_PAGE = 50
# Lines and sign-ups listed (oldest first); the counts are always whole.
LIST_CAP = 100
# A heal re-reads at most this many orders still owed units on the variant (oldest first);
# the hourly reconciliation reads the rest.
HEAL_ORDER_CAP = 50
# How a heal is written in the badge's audit trail: the cause names who asked.
SUPPORT = "support"

# Within one instant, the path's own order.
RANK = {"received": 0, "step": 1, "decision": 2, "pushed": 3, "mail": 4}


class HealFailed(Exception):
    """The platform could not be read (or no longer has the variant): nothing was written."""

    def __init__(self, message: str, status: int = 502):
        super().__init__(message)
        self.message = message
        self.status = status


def find_variant(session: Session, shop: Shop, variant_id: int) -> Variant | None:
    """The variant, only if it is this shop's."""
    return session.scalar(
        select(Variant).where(Variant.id == variant_id, Variant.shop_id == shop.id)
    )


# -- the page ------------------------------------------------------------------------------------


@dataclass
class StockRow:
    location_id: str
    name: str | None
    available: int
    counted: bool
    updated_at: str | None


@dataclass
class WaitingLine:
    id: int
    order_name: str
    customer_email: str | None
    customer_name: str | None
    ordered_at: str | None
    status: str
    open: int
    allocated: int
    eta: date | None


@dataclass
class Subscriber:
    id: int
    email: str
    status: str
    signed_up_at: str | None


@dataclass
class Entry:
    """One timeline entry; `anchor` is its id in the page, `refers_to` the anchor of its cause,
    `line_id`/`email` what it is about."""

    kind: str  # received | step | decision | pushed | mail
    id: int
    at: datetime
    at_local: str | None
    anchor: str
    title: str
    detail: str = ""
    status: str = ""
    refers_to: str | None = None
    refers_label: str | None = None
    line_id: int | None = None
    email: str | None = None
    staff_user: str | None = None

    @property
    def key(self) -> tuple[datetime, int, int]:
        return (self.at, RANK[self.kind], self.id)


@dataclass
class VariantPage:
    variant: Variant
    product_title: str
    badge: VariantBadge | None
    # What the engine would say now (when no badge was decided yet, or to show the reason).
    reason: str
    stock: list[StockRow]
    total: int
    lines: list[WaitingLine]
    lines_count: int
    subscribers: list[Subscriber]
    subscribers_count: int
    timeline: list[Entry] = field(default_factory=list)
    earlier: str | None = None  # the cursor of the next (older) page, if any


def variant_page(
    session: Session, shop: Shop, variant: Variant, before: str | None = None
) -> VariantPage:
    badge = session.get(VariantBadge, variant.id)
    reason = badge.reason if badge is not None and badge.reason else ""
    if not reason:
        reason = decide_for_variant(session, shop, variant, shop_today(shop.timezone)).reason
    lines, lines_count = _waiting_lines(session, shop, variant)
    subscribers, subscribers_count = _subscribers(session, shop, variant)
    timeline, earlier = timeline_page(session, shop, variant, parse_cursor(before))
    return VariantPage(
        variant=variant,
        product_title=variant.product.title if variant.product else "",
        badge=badge,
        reason=reason,
        stock=_stock(session, shop, variant),
        total=variant.inventory_total,
        lines=lines,
        lines_count=lines_count,
        subscribers=subscribers,
        subscribers_count=subscribers_count,
        timeline=timeline,
        earlier=earlier,
    )


def _stock(session: Session, shop: Shop, variant: Variant) -> list[StockRow]:
    chosen = catalog.counted_locations(shop.settings)
    rows = session.execute(
        select(InventoryLevel, StoreLocation.name)
        .outerjoin(
            StoreLocation,
            (StoreLocation.shop_id == InventoryLevel.shop_id)
            & (StoreLocation.location_id == InventoryLevel.location_id),
        )
        .where(InventoryLevel.variant_id == variant.id)
    ).all()
    stock = [
        StockRow(
            location_id=level.location_id,
            name=name,
            available=level.available,
            counted=chosen is None or level.location_id in chosen,
            updated_at=admin_text.moment(level.source_updated_at, shop.timezone),
        )
        for level, name in rows
    ]
    return sorted(stock, key=lambda r: (len(r.location_id), r.location_id))


def _waiting_lines(session: Session, shop: Shop, variant: Variant) -> tuple[list[WaitingLine], int]:
    where = (
        BackorderLine.shop_id == shop.id,
        BackorderLine.variant_id == variant.id,
        BackorderLine.status.in_(ledger.OWING),
    )
    count = session.scalar(select(func.count()).select_from(BackorderLine).where(*where)) or 0
    rows = session.execute(
        select(BackorderLine, Order)
        .join(OrderLine, OrderLine.id == BackorderLine.order_line_id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(*where)
        .order_by(BackorderLine.ordered_at, BackorderLine.id)
        .limit(LIST_CAP)
    ).all()
    badge = session.get(VariantBadge, variant.id)
    return [
        WaitingLine(
            id=line.id,
            order_name=order.name or f"#{order.platform_id}",
            customer_email=order.customer_email,
            customer_name=order.customer_name,
            ordered_at=admin_text.moment(line.ordered_at, shop.timezone),
            status=line.status.value,
            open=line.open_quantity,
            allocated=line.allocated_quantity,
            eta=line.eta_override or (badge.eta if badge is not None else None),
        )
        for line, order in rows
    ], count


def _subscribers(session: Session, shop: Shop, variant: Variant) -> tuple[list[Subscriber], int]:
    where = (
        NotifySubscription.shop_id == shop.id,
        NotifySubscription.variant_id == variant.id,
        NotifySubscription.status.in_(WAITING),
    )
    count = session.scalar(select(func.count()).select_from(NotifySubscription).where(*where))
    rows = session.scalars(
        select(NotifySubscription)
        .where(*where)
        .order_by(NotifySubscription.created_at, NotifySubscription.id)
        .limit(LIST_CAP)
    )
    return [
        Subscriber(
            id=s.id,
            email=s.email,
            status=s.status.value,
            signed_up_at=admin_text.moment(s.created_at, shop.timezone),
        )
        for s in rows
    ], count or 0


# -- the timeline --------------------------------------------------------------------------------


def parse_cursor(raw: str | None) -> tuple[datetime, int, int] | None:
    """`<ISO moment>~<rank>~<id>` of the oldest entry shown; anything else is the first page."""
    if not raw:
        return None
    try:
        moment, rank, entry_id = raw.split("~")
        at = datetime.fromisoformat(moment)
        if at.tzinfo is None:
            return None
        return at, int(rank), int(entry_id)
    except ValueError:
        return None


def cursor_of(entry: Entry) -> str:
    return f"{entry.at.isoformat()}~{RANK[entry.kind]}~{entry.id}"


def timeline_page(
    session: Session,
    shop: Shop,
    variant: Variant,
    before: tuple[datetime, int, int] | None = None,
    limit: int | None = None,
) -> tuple[list[Entry], str | None]:
    """The `limit` most recent entries older than `before`, oldest first (the path reads in
    order), and the cursor of the page before them when there is one.

    Each source is read newest first with the same limit (indexed per variant), so a busy
    variant costs the same as a quiet one; the merge keeps the newest `limit`.
    """
    limit = limit or TIMELINE_PAGE
    cutoff = before[0] if before else None
    zone = shop.timezone
    entries: list[Entry] = []

    def upto(column):
        return column <= cutoff if cutoff is not None else true()

    transitions = session.scalars(
        select(BadgeTransition)
        .where(
            BadgeTransition.shop_id == shop.id,
            BadgeTransition.variant_id == variant.id,
            upto(BadgeTransition.created_at),
        )
        .order_by(BadgeTransition.created_at.desc(), BadgeTransition.id.desc())
        .limit(limit + 1)
    ).all()
    pushes = session.scalars(
        select(BadgePushRecord)
        .where(
            BadgePushRecord.shop_id == shop.id,
            BadgePushRecord.variant_id == variant.id,
            upto(BadgePushRecord.at),
        )
        .order_by(BadgePushRecord.at.desc(), BadgePushRecord.id.desc())
        .limit(limit + 1)
    ).all()
    steps = session.execute(
        select(BackorderStep, BackorderLine, Order.customer_email)
        .join(BackorderLine, BackorderLine.id == BackorderStep.line_id)
        .join(OrderLine, OrderLine.id == BackorderLine.order_line_id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(
            BackorderLine.shop_id == shop.id,
            BackorderLine.variant_id == variant.id,
            upto(BackorderStep.at),
        )
        .order_by(BackorderStep.at.desc(), BackorderStep.id.desc())
        .limit(limit + 1)
    ).all()
    mail_at = func.coalesce(OutboxMail.sent_at, OutboxMail.created_at)
    line_ids = select(BackorderLine.id).where(
        BackorderLine.shop_id == shop.id, BackorderLine.variant_id == variant.id
    )
    subscription_ids = select(NotifySubscription.id).where(
        NotifySubscription.shop_id == shop.id, NotifySubscription.variant_id == variant.id
    )
    mails = session.scalars(
        select(OutboxMail)
        .where(
            OutboxMail.shop_id == shop.id,
            or_(
                OutboxMail.backorder_line_id.in_(line_ids),
                OutboxMail.notify_subscription_id.in_(subscription_ids),
            ),
            upto(mail_at),
        )
        .order_by(mail_at.desc(), OutboxMail.id.desc())
        .limit(limit + 1)
    ).all()
    # The deliveries that caused this variant's decisions or line steps (newest first, like
    # every source), so a webhook's entry is on the page of the moment it arrived.
    caused_decisions = select(BadgeTransition.webhook_event_id).where(
        BadgeTransition.variant_id == variant.id, BadgeTransition.webhook_event_id.is_not(None)
    )
    caused_steps = select(BackorderStep.webhook_event_id).where(
        BackorderStep.line_id.in_(line_ids), BackorderStep.webhook_event_id.is_not(None)
    )
    events = session.scalars(
        select(WebhookEvent)
        .where(
            WebhookEvent.shop_id == shop.id,
            or_(WebhookEvent.id.in_(caused_decisions), WebhookEvent.id.in_(caused_steps)),
            upto(WebhookEvent.received_at),
        )
        .order_by(WebhookEvent.received_at.desc(), WebhookEvent.id.desc())
        .limit(limit + 1)
    ).all()

    for event in events:
        entries.append(
            Entry(
                kind="received",
                id=event.id,
                at=event.received_at,
                at_local=admin_text.moment(event.received_at, zone),
                anchor=f"webhook-{event.id}",
                title=_("Webhook %(topic)s", topic=event.topic),
                detail=_(
                    "Delivery %(event)s, %(attempts)s attempt(s)",
                    event=event.event_id,
                    attempts=event.attempts,
                )
                + (f" · {event.last_error}" if event.last_error else ""),
                status=event.status.value,
            )
        )
    for t in transitions:
        staff = t.staff_user
        if t.from_state is None:
            change = _("first decision: %(to)s", to=_state(t.to_state))
        elif (t.from_state, t.from_eta) == (t.to_state, t.to_eta) and staff:
            change = _("checked, unchanged: %(to)s", to=_state(t.to_state))
        else:
            change = f"{_state(t.from_state)} → {_state(t.to_state)}"
        if t.to_eta:
            change += " · " + _("ships by %(date)s", date=t.to_eta.isoformat())
        entries.append(
            Entry(
                kind="decision",
                id=t.id,
                at=t.created_at,
                at_local=admin_text.moment(t.created_at, zone),
                anchor=f"decision-{t.id}",
                title=_("Heal now by support") if staff else _("Badge decided"),
                detail=change + (f" · {t.reason}" if t.reason else ""),
                status=t.to_state.value,
                refers_to=f"webhook-{t.webhook_event_id}" if t.webhook_event_id else None,
                refers_label=(
                    _("webhook #%(id)s", id=t.webhook_event_id)
                    if t.webhook_event_id
                    else _cause_name(t.cause)
                ),
                staff_user=staff,
            )
        )
    for step, line, email in steps:
        entries.append(
            Entry(
                kind="step",
                id=step.id,
                at=step.at,
                at_local=admin_text.moment(step.at, zone),
                anchor=f"step-{step.id}",
                title=_("Line #%(line)s: %(kind)s", line=line.id, kind=step.kind),
                detail=_("%(num)s unit(s)", num=step.quantity)
                + (f" · {step.note}" if step.note else ""),
                status=step.kind,
                refers_to=f"webhook-{step.webhook_event_id}" if step.webhook_event_id else None,
                refers_label=(
                    _("webhook #%(id)s", id=step.webhook_event_id)
                    if step.webhook_event_id
                    else _cause_name(step.cause)
                ),
                line_id=line.id,
                email=email,
                staff_user=step.staff_user,
            )
        )
    decisions = sorted((e for e in entries if e.kind == "decision"), key=lambda e: e.key)
    for push in pushes:
        decided = [d for d in decisions if d.at <= push.at]
        entries.append(
            Entry(
                kind="pushed",
                id=push.id,
                at=push.at,
                at_local=admin_text.moment(push.at, zone),
                anchor=f"push-{push.id}",
                title=(
                    _("Pushed to the store")
                    if push.outcome == "pushed"
                    else _("Push to the store failed")
                ),
                detail=_(
                    "version %(version)s: %(state)s", version=push.version, state=_state(push.state)
                )
                + (" · " + _("ships by %(date)s", date=push.eta.isoformat()) if push.eta else "")
                + (f" · {push.error}" if push.error else ""),
                status=push.outcome,
                refers_to=decided[-1].anchor if decided else None,
                refers_label=_("decision #%(id)s", id=decided[-1].id) if decided else None,
            )
        )
    for mail in mails:
        at = mail.sent_at or mail.created_at
        entries.append(
            Entry(
                kind="mail",
                id=mail.id,
                at=at,
                at_local=admin_text.moment(at, zone),
                anchor=f"mail-{mail.id}",
                title=_(
                    "Mail %(status)s: %(subject)s",
                    status=_mail_status(mail.status.value),
                    subject=mail.subject,
                ),
                detail=_("to %(recipient)s (%(kind)s)", recipient=mail.recipient, kind=mail.kind),
                status=mail.status.value,
                line_id=mail.backorder_line_id,
                email=mail.recipient,
            )
        )

    if before is not None:
        entries = [e for e in entries if e.key < before]
    entries.sort(key=lambda e: e.key, reverse=True)
    shown = entries[:limit]
    more = len(entries) > limit or any(
        len(rows) > limit for rows in (transitions, pushes, steps, mails, events)
    )
    earlier = cursor_of(shown[-1]) if shown and more else None
    shown.reverse()
    return shown, earlier


def _state(state: BadgeKind | None) -> str:
    names = {
        BadgeKind.IN_STOCK: _("In stock"),
        BadgeKind.BACKORDER: _("Backorder"),
        BadgeKind.OUT_OF_STOCK: _("Out of stock"),
        BadgeKind.HIDDEN: _("Hidden"),
    }
    return names.get(state, str(state)) if state is not None else "—"


def _mail_status(status: str) -> str:
    names = {
        "sent": _("sent"),
        "pending": _("waiting to be sent"),
        "sending": _("being sent"),
        "bounced": _("bounced"),
        "suppressed": _("not sent"),
    }
    return names.get(status, status)


def _cause_name(cause: str | None) -> str | None:
    if not cause:
        return None
    if cause == "reconcile":
        return _("reconciliation")
    if cause.startswith(SUPPORT):
        return _("support")
    return cause


# -- heal now ------------------------------------------------------------------------------------


@dataclass
class HealResult:
    badge_changed: bool
    lines_changed: int
    mail_ids: list[int]
    badges_to_push: int


def heal_variant(
    session: Session, shop: Shop, variant: Variant, staff_user: str, now: datetime | None = None
) -> HealResult:
    """Re-read this variant's product (stock per location, selling policy) and the orders still
    owed units on it from the platform, then settle its lines and decide its badge again, as
    reconciliation does for the whole shop. Every platform read comes first: a failure raises
    HealFailed before anything is written (and the caller rolls back the unit of work).

    The heal is written in the badge's audit trail with who asked, even when nothing drifted.
    """
    now = now or utcnow()
    product_id = variant.product.platform_id
    try:
        connector = connector_for(shop, session)
        facts = connector.fetch_product(product_id, now)
        owed = session.scalars(
            select(Order.platform_id)
            .join(OrderLine, OrderLine.order_id == Order.id)
            .join(BackorderLine, BackorderLine.order_line_id == OrderLine.id)
            .where(
                BackorderLine.shop_id == shop.id,
                BackorderLine.variant_id == variant.id,
                BackorderLine.status.in_(ledger.OWING),
            )
            .order_by(BackorderLine.ordered_at)
            .limit(HEAL_ORDER_CAP)
        ).all()
        orders = [connector.fetch_order(order_id) for order_id in dict.fromkeys(owed)]
        locations = connector.fetch_locations()
    except Exception as exc:  # a platform failure of any kind: said plainly, nothing written
        raise HealFailed(
            _("The store could not be read, so nothing was changed: %(error)s", error=exc)
        ) from exc
    if facts is None or variant.platform_id not in {v.platform_id for v in facts.variants}:
        raise HealFailed(
            _("The store no longer has this variant; the next reconciliation removes it."), 409
        )

    touched: dict[int, Variant] = {variant.id: variant}
    for changed in catalog.upsert_product(session, shop, facts, now):
        touched[changed.id] = changed
    for order_facts in orders:
        if order_facts is None:
            continue
        changed = ledger.record_order(
            session, shop, order_facts, lambda ref: catalog.find_variant(session, shop.id, ref)
        )
        for other in changed or []:
            touched[other.id] = other
    catalog.name_locations(session, shop.id, locations)
    session.flush()

    cause = ledger.Cause(SUPPORT, note="heal now from the support desk")
    steps: list[BackorderStep] = []
    lines_changed = 0
    for each in touched.values():
        settled = ledger.settle_variant(session, each, cause, now)
        lines_changed += settled.lines_changed
        steps.extend(settled.steps)
    for step in steps:
        step.staff_user = staff_user
    to_push = 0
    badge_changed = False
    for each in touched.values():
        changed = refresh_badge(session, shop, each, cause=SUPPORT, now=now, staff_user=staff_user)
        if changed is not None:
            to_push += 1
            badge_changed = badge_changed or each.id == variant.id
    if not badge_changed:
        _record_unchanged(session, shop, variant, staff_user, now)
    mail_ids = (
        customer_mails.after_settling(session, shop, steps, customer_mails.app_links())
        if steps
        else []
    )
    session.flush()
    return HealResult(badge_changed, lines_changed, mail_ids, to_push)


def _record_unchanged(
    session: Session, shop: Shop, variant: Variant, staff_user: str, now: datetime
) -> None:
    """A heal that found nothing to fix is still written down: who checked, and when."""
    badge = session.get(VariantBadge, variant.id)
    if badge is None:
        return
    session.add(
        BadgeTransition(
            shop_id=shop.id,
            variant_id=variant.id,
            from_state=badge.state,
            to_state=badge.state,
            from_eta=badge.eta,
            to_eta=badge.eta,
            label=badge.label,
            reason=badge.reason,
            cause=SUPPORT,
            staff_user=staff_user,
            created_at=now,
        )
    )
