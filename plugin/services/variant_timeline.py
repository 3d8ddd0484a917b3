"""A variant's timeline for the support desk: what happened to it, joined in one list. Webhook
received → decision → pushed to the store → mails sent (and the ledger's line steps), each entry
linked to what caused it, newest page first, paged by a cursor so a busy variant stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, true
from sqlalchemy.orm import Session

from domain.badges import BadgeKind
from plugin.models import (
    BackorderLine,
    BackorderStep,
    BadgePushRecord,
    BadgeTransition,
    NotifySubscription,
    Order,
    OrderLine,
    OutboxMail,
    Shop,
    Variant,
    WebhookEvent,
)
from plugin.services import admin_text, inbox
from plugin.services.admin_text import _

# The most recent timeline entries one page shows; "earlier" pages on from the oldest shown.
TIMELINE_PAGE = 50
# How support's own actions are named in timelines ("heal now").
SUPPORT = "support"

# Within one instant, the path's own order.
RANK = {"received": 0, "step": 1, "decision": 2, "pushed": 3, "mail": 4}


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
                    event=inbox.shown_event_id(event),
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
