"""Support desk: one customer of one shop, as support staff see them, and what staff may do.

A customer is an address on the shop's orders. Their page shows every backordered line of
those orders (open, allocated, closed) with the date the customer sees now (the line's own date
set by staff, else the variant badge's), the date first promised and the line's timeline; the
mails they were sent; and the internal notes staff wrote. Nothing of another shop is ever read:
every query names the shop.

Staff actions, each recorded with who did it (`staff_user`), flushed here, committed by the
view:

- **resend a mail** that was sent: a new outbox row copying it (key `resend:<mail id>:<n>`), and
  a `mail_resent` step on its line if it has one. A mail never sent is not resent.
- **change one line's date** with a reason: `eta_override`/`eta_reason` on the line, an
  `eta_changed` step (note: JSON from/to/reason, as the settings' moves write it) and the
  ETA-change notice through `customer_mails` (the shop's switches and quiet period apply).
- **cancel a line on the customer's behalf**: the customer self-cancel's own path
  (`customer_links`): a `cancel_requested` step (cause "support"), then the caller queues the
  platform cancel job, which records `cancel_done`/`cancel_failed` and re-reads the order. Only
  where the shop lets the app cancel in the store; otherwise refused, saying so.
- **add an internal note** (`CustomerNote`), never shown to the customer.
"""

from __future__ import annotations

import json
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload

from plugin.models import (
    BackorderLine,
    BackorderStatus,
    BackorderStep,
    CustomerNote,
    MailStatus,
    Order,
    OrderLine,
    OutboxMail,
    Shop,
    Variant,
    VariantBadge,
    utcnow,
)
from plugin.services import customer_links, customer_mails, outbox
from plugin.services.admin_text import N_, _
from plugin.services.ledger import OWING, add_step
from plugin.services.shop_time import shop_today

SUPPORT = "support"
MAIL_RESENT = "mail_resent"
NOTE_MAX = 2000
REASON_MAX = 500
EMAIL_MAX = 255

# How each step reads in a timeline (translated where shown).
STEP_LABELS = {
    "opened": N_("Went on backorder"),
    "allocated": N_("Restocked units reserved"),
    "released": N_("Reserved units released"),
    "fulfilled": N_("Shipped"),
    "cancelled": N_("Cancelled"),
    "eta_changed": N_("Shipping date changed"),
    customer_links.CANCEL_REQUESTED: N_("Cancellation requested"),
    customer_links.CANCEL_DONE: N_("Cancelled in the store"),
    customer_links.CANCEL_FAILED: N_("The store refused the cancellation"),
    customer_links.CONSENTED: N_("Customer agreed to wait"),
    customer_links.CANCEL_OWED: N_("Owed a cancellation and refund"),
    customer_links.DELAY_NOTIFIED: N_("Delay notice sent"),
    MAIL_RESENT: N_("Mail resent"),
}
MAIL_STATUS_LABELS = {
    MailStatus.PENDING: N_("Waiting to be sent"),
    MailStatus.SENDING: N_("Being sent"),
    MailStatus.SENT: N_("Sent"),
    MailStatus.BOUNCED: N_("Bounced"),
    MailStatus.SUPPRESSED: N_("Not sent"),
}


class DeskActionRefused(Exception):
    """An action (or a look-up) that cannot be done: the message for staff, and the status."""

    def __init__(self, message: str, status: int = 409):
        super().__init__(message)
        self.message = message
        self.status = status


# --- reading -------------------------------------------------------------------------------------


def clean_email(raw: str | None) -> str:
    """The address as given (spaces trimmed), or DeskActionRefused(400)."""
    email = (raw or "").strip()
    if not email:
        raise DeskActionRefused(_("Name a customer's email address."), 400)
    if len(email) > EMAIL_MAX or _has_control(email) or "@" not in email:
        raise DeskActionRefused(_("This is not an email address the desk can look up."), 400)
    return email


def _has_control(text: str, allowed: str = "") -> bool:
    return any(
        unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") and ch not in allowed for ch in text
    )


def _addresses(email: str) -> list[str]:
    """The spellings an order may carry the address under (as given, and in lower case), so the
    (shop_id, customer_email) index finds them."""
    return sorted({email, email.lower()})


def _order_ids(session: Session, shop: Shop, email: str) -> list[int]:
    return list(
        session.scalars(
            select(Order.id).where(
                Order.shop_id == shop.id, Order.customer_email.in_(_addresses(email))
            )
        )
    )


@dataclass
class StepView:
    at: datetime
    kind: str
    label: str
    quantity: int
    cause: str
    staff_user: str | None
    detail: str


@dataclass
class LineView:
    id: int
    order_name: str
    order_admin_url: str | None
    variant_id: int
    product: str
    sku: str
    status: str
    quantity: int
    open: int
    allocated: int
    fulfilled: int
    cancelled: int
    eta_now: date | None
    eta_is_override: bool
    eta_reason: str | None
    promised_eta: date | None
    steps: list[StepView]
    cancel_pending: bool

    @property
    def owing(self) -> bool:
        return self.status in OWING


@dataclass
class MailView:
    id: int
    kind: str
    subject: str
    status: str
    status_label: str
    at: datetime
    sent_at: datetime | None
    order_name: str | None
    line_id: int | None
    resent_from: int | None
    text_body: str

    @property
    def resendable(self) -> bool:
        return self.status == MailStatus.SENT


@dataclass
class NoteView:
    id: int
    at: datetime
    staff_user: str
    text: str


@dataclass
class ActivityItem:
    at: datetime
    what: str
    detail: str
    staff_user: str | None


@dataclass
class Customer:
    email: str
    name: str
    orders: int
    open: list[LineView] = field(default_factory=list)
    allocated: list[LineView] = field(default_factory=list)
    closed: list[LineView] = field(default_factory=list)
    mails: list[MailView] = field(default_factory=list)
    notes: list[NoteView] = field(default_factory=list)
    activity: list[ActivityItem] = field(default_factory=list)

    @property
    def lines(self) -> list[LineView]:
        return self.open + self.allocated + self.closed


def _step_detail(step: BackorderStep) -> str:
    if step.kind == customer_mails.ETA_CHANGED and step.note:
        try:
            data = json.loads(step.note)
        except ValueError:
            return step.note
        text = _("from %(old)s to %(new)s", old=data.get("from") or "—", new=data.get("to") or "—")
        if data.get("reason"):
            text += " · " + _("reason: %(reason)s", reason=data["reason"])
        return text
    if step.kind == customer_links.DELAY_NOTIFIED and step.note:
        try:
            notice = customer_links.Notice.of(step)
        except (ValueError, TypeError):
            return step.note
        return _(
            "notice %(number)s, new date %(date)s", number=notice.number, date=notice.revised or "—"
        )
    if step.kind == customer_links.CANCEL_REQUESTED:
        return _("the whole order") if step.note == "order" else _("this line")
    return step.note or ""


def _line_view(session: Session, line: BackorderLine, badge_eta: date | None) -> LineView:
    order = line.order
    steps = [
        StepView(
            at=s.at,
            kind=s.kind,
            label=_(STEP_LABELS[s.kind]) if s.kind in STEP_LABELS else s.kind,
            quantity=s.quantity,
            cause=s.cause,
            staff_user=s.staff_user,
            detail=_step_detail(s),
        )
        for s in line.steps
    ]
    requested = customer_links.steps_of(line, customer_links.CANCEL_REQUESTED)
    answered = customer_links.steps_of(line, customer_links.CANCEL_DONE) or (
        customer_links.steps_of(line, customer_links.CANCEL_FAILED)
    )
    return LineView(
        id=line.id,
        order_name=order.name or order.platform_id,
        order_admin_url=order.admin_url,
        variant_id=line.variant_id,
        product=customer_mails.product_name(line.variant),
        sku=line.variant.sku or "",
        status=str(line.status),
        quantity=line.quantity,
        open=line.open_quantity,
        allocated=line.allocated_quantity,
        fulfilled=line.fulfilled_quantity,
        cancelled=line.cancelled_quantity,
        eta_now=line.eta_override or badge_eta,
        eta_is_override=line.eta_override is not None,
        eta_reason=line.eta_reason,
        promised_eta=line.promised_eta,
        steps=steps,
        cancel_pending=bool(requested) and not answered,
    )


def customer(session: Session, shop: Shop, email: str) -> Customer:
    """The customer's page, or DeskActionRefused(404) when the shop has no order of theirs."""
    addresses = _addresses(email)
    orders = list(
        session.scalars(
            select(Order)
            .where(Order.shop_id == shop.id, Order.customer_email.in_(addresses))
            .order_by(Order.placed_at.desc(), Order.id.desc())
        )
    )
    if not orders:
        raise DeskActionRefused(_("This shop has no order from this address."), 404)
    order_ids = [o.id for o in orders]
    found = Customer(
        email=email,
        name=next((o.customer_name for o in orders if o.customer_name), "") or "",
        orders=len(orders),
    )
    lines = list(
        session.scalars(
            select(BackorderLine)
            .join(OrderLine, OrderLine.id == BackorderLine.order_line_id)
            .where(BackorderLine.shop_id == shop.id, OrderLine.order_id.in_(order_ids))
            .options(
                selectinload(BackorderLine.steps),
                joinedload(BackorderLine.order_line).joinedload(OrderLine.order),
                joinedload(BackorderLine.variant).joinedload(Variant.product),
            )
            .order_by(BackorderLine.ordered_at.desc(), BackorderLine.id.desc())
        )
    )
    badge_etas = dict(
        session.execute(
            select(VariantBadge.variant_id, VariantBadge.eta).where(
                VariantBadge.shop_id == shop.id,
                VariantBadge.variant_id.in_({line.variant_id for line in lines} or {0}),
            )
        ).all()
    )
    for line in lines:
        view = _line_view(session, line, badge_etas.get(line.variant_id))
        if line.status == BackorderStatus.OPEN:
            found.open.append(view)
        elif line.status == BackorderStatus.ALLOCATED:
            found.allocated.append(view)
        else:
            found.closed.append(view)
    names = {o.id: o.name or o.platform_id for o in orders}
    found.mails = _mails(session, shop, email, order_ids, [line.id for line in lines], names)
    found.notes = [
        NoteView(n.id, n.at, n.staff_user, n.text)
        for n in session.scalars(
            select(CustomerNote)
            .where(CustomerNote.shop_id == shop.id, CustomerNote.customer_email == email.lower())
            .order_by(CustomerNote.at.desc(), CustomerNote.id.desc())
        )
    ]
    found.activity = _activity(found)
    return found


def _mails(
    session: Session,
    shop: Shop,
    email: str,
    order_ids: list[int],
    line_ids: list[int],
    names: dict[int, str],
) -> list[MailView]:
    """The mails sent (or to be sent) to this address about their orders, or to the address."""
    wanted = email.lower()
    rows = session.scalars(
        select(OutboxMail)
        .where(
            OutboxMail.shop_id == shop.id,
            or_(
                OutboxMail.recipient.in_(_addresses(email)),
                OutboxMail.order_id.in_(order_ids or [0]),
                OutboxMail.backorder_line_id.in_(line_ids or [0]),
            ),
        )
        .order_by(OutboxMail.created_at.desc(), OutboxMail.id.desc())
    )
    mails = []
    for mail in rows:
        if mail.recipient.lower() != wanted:  # the merchant's own mails about the order
            continue
        resent_from = None
        if mail.idempotency_key.startswith("resend:"):
            try:
                resent_from = int(mail.idempotency_key.split(":")[1])
            except (IndexError, ValueError):
                resent_from = None
        mails.append(
            MailView(
                id=mail.id,
                kind=mail.kind,
                subject=mail.subject,
                status=str(mail.status),
                status_label=_(MAIL_STATUS_LABELS.get(mail.status, str(mail.status))),
                at=mail.sent_at or mail.created_at,
                sent_at=mail.sent_at,
                order_name=names.get(mail.order_id) if mail.order_id else None,
                line_id=mail.backorder_line_id,
                resent_from=resent_from,
                text_body=mail.text_body,
            )
        )
    return mails


def _activity(found: Customer) -> list[ActivityItem]:
    """Everything that happened to this customer, newest first: line steps, mails, notes."""
    items: list[ActivityItem] = []
    for line in found.lines:
        for step in line.steps:
            what = f"{step.label} · {line.order_name} · {line.product}"
            items.append(ActivityItem(step.at, what, step.detail, step.staff_user))
    for mail in found.mails:
        items.append(
            ActivityItem(
                mail.at, _("Mail: %(subject)s", subject=mail.subject), mail.status_label, None
            )
        )
    for note in found.notes:
        items.append(ActivityItem(note.at, _("Internal note"), note.text, note.staff_user))
    items.sort(key=lambda item: item.at, reverse=True)
    return items


def mail_of(session: Session, shop: Shop, email: str, mail_id: int) -> OutboxMail:
    """One mail this shop sent this customer, or DeskActionRefused(404)."""
    mail = session.get(OutboxMail, mail_id)
    if mail is None or mail.shop_id != shop.id or mail.recipient.lower() != email.lower():
        raise DeskActionRefused(_("No such mail for this customer."), 404)
    return mail


def _line_of(session: Session, shop: Shop, email: str, line_id: int) -> BackorderLine:
    line = session.scalar(
        select(BackorderLine)
        .join(OrderLine, OrderLine.id == BackorderLine.order_line_id)
        .join(Order, Order.id == OrderLine.order_id)
        .where(
            BackorderLine.id == line_id,
            BackorderLine.shop_id == shop.id,
            Order.shop_id == shop.id,
            Order.customer_email.in_(_addresses(email)),
        )
        .with_for_update(of=BackorderLine)
    )
    if line is None:
        raise DeskActionRefused(_("No such line for this customer."), 404)
    return line


# --- acting --------------------------------------------------------------------------------------


def resend(session: Session, shop: Shop, email: str, mail_id: int, staff_user: str) -> int:
    """Queue a copy of a sent mail; returns the new mail's id (for `plugin.jobs.queue_mails`)."""
    original = mail_of(session, shop, email, mail_id)
    if original.status != MailStatus.SENT:
        raise DeskActionRefused(
            _(
                "This mail was never sent, so it cannot be resent (its status: %(status)s).",
                status=_(MAIL_STATUS_LABELS.get(original.status, str(original.status))),
            ),
            409,
        )
    # Serialize resends of one mail, so two clicks make two numbered copies, never a clash.
    session.execute(select(OutboxMail.id).where(OutboxMail.id == original.id).with_for_update())
    count = session.scalar(
        select(func.count(OutboxMail.id)).where(
            OutboxMail.shop_id == shop.id,
            OutboxMail.idempotency_key.like(f"resend:{original.id}:%"),
        )
    )
    new_id = outbox.queue_mail(
        session,
        shop,
        kind=original.kind,
        recipient=original.recipient,
        key=f"resend:{original.id}:{(count or 0) + 1}",
        mail=outbox.Composed(
            subject=original.subject,
            text=original.text_body,
            html=original.html_body,
            locale=original.locale,
        ),
        order_id=original.order_id,
        backorder_line_id=original.backorder_line_id,
        notify_subscription_id=original.notify_subscription_id,
        unsubscribe_url=original.unsubscribe_url,
    )
    if new_id is None:  # pragma: no cover - the lock above makes the key new
        raise DeskActionRefused(_("This mail is being resent already."), 409)
    if original.backorder_line_id is not None:
        line = session.get(BackorderLine, original.backorder_line_id)
        if line is not None and line.shop_id == shop.id:
            step = add_step(
                session,
                line,
                MAIL_RESENT,
                0,
                SUPPORT,
                note=_("“%(subject)s” resent", subject=original.subject),
            )
            step.staff_user = staff_user
    session.flush()
    return new_id


@dataclass(frozen=True)
class EtaChange:
    line_id: int
    mail_id: int | None
    told: bool  # a notice to the customer is queued (or an earlier pending one updated)


def change_eta(
    session: Session,
    shop: Shop,
    email: str,
    line_id: int,
    raw_eta: str | None,
    raw_reason: str | None,
    staff_user: str,
    links: customer_mails.Links | None = None,
    now: datetime | None = None,
) -> EtaChange:
    """Set one line's date with the reason the customer is given, and tell them."""
    now = now or utcnow()
    line = _line_of(session, shop, email, line_id)
    if line.status not in OWING:
        raise DeskActionRefused(_("This line has shipped or was cancelled: its date is final."))
    try:
        new = date.fromisoformat((raw_eta or "").strip())
    except ValueError as exc:
        raise DeskActionRefused(_("Enter the new date as YYYY-MM-DD."), 422) from exc
    if new < shop_today(shop.timezone):
        raise DeskActionRefused(_("The new date is in the past."), 422)
    reason = (raw_reason or "").strip()
    if not reason:
        raise DeskActionRefused(_("Give the reason the customer will read."), 422)
    if len(reason) > REASON_MAX or _has_control(reason):
        raise DeskActionRefused(
            _("The reason is at most %(count)s characters of plain text.", count=REASON_MAX), 422
        )
    badge = session.get(VariantBadge, line.variant_id)
    old = line.eta_override or (badge.eta if badge is not None else None) or line.promised_eta
    if old == new:
        raise DeskActionRefused(_("The line already has this date."), 422)
    line.eta_override = new
    line.eta_reason = reason
    note = json.dumps(
        {"from": old.isoformat() if old else None, "to": new.isoformat(), "reason": reason}
    )
    step = add_step(
        session, line, customer_mails.ETA_CHANGED, line.owed, SUPPORT, note=note, at=now
    )
    step.staff_user = staff_user
    session.flush()
    mail_id = None
    if shop.settings is not None and shop.settings.email_eta_changed:
        if old is not None:
            mail_id = customer_mails._eta_notice(session, shop, line, step, links, now)
        else:
            mail_id = _first_date_notice(session, shop, line, step, new, reason, links)
    session.flush()
    return EtaChange(line_id=line.id, mail_id=mail_id, told=mail_id is not None)


def _first_date_notice(
    session: Session,
    shop: Shop,
    line: BackorderLine,
    step: BackorderStep,
    new: date,
    reason: str,
    links: customer_mails.Links | None,
) -> int | None:
    """The ETA-change notice for a line that had no date before ("Before: not set")."""
    order = line.order
    if not order.customer_email or order.cancelled_at is not None:
        return None
    context = {
        "shop_name": shop.name or shop.domain,
        "customer_name": order.customer_name or "",
        "order_name": order.name or order.platform_id,
        "product": customer_mails.product_name(line.variant),
        "old_eta": None,
        "new_eta": new,
        "reason": reason,
        "cancel_url": links.cancel(line.id) if links else "",
    }
    locale = order.customer_locale or shop.locale or "en"
    mail = customer_mails.compose(session, shop, customer_mails.ETA_CHANGE, locale, context)
    return outbox.queue_mail(
        session,
        shop,
        kind=customer_mails.ETA_CHANGE,
        recipient=order.customer_email,
        key=f"eta_change:{line.id}:{step.id}",
        mail=mail,
        order_id=order.id,
        backorder_line_id=line.id,
    )


def cancel_line(session: Session, shop: Shop, email: str, line_id: int, staff_user: str) -> int:
    """Ask the store to cancel one line for the customer; the caller queues the platform cancel
    (`plugin.jobs.queue_platform_cancel`) after commit. Returns the line's id."""
    line = _line_of(session, shop, email, line_id)
    if line.status not in OWING:
        raise DeskActionRefused(_("This line has shipped or was cancelled already."))
    if not customer_links.platform_cancel_allowed(shop):
        raise DeskActionRefused(
            _(
                "This shop does not let the app cancel orders in the store. Cancel the line in "
                "the store's own admin (the ledger follows), or turn on cancelling in the store "
                "in Settings, under customer emails."
            ),
            409,
        )
    session.refresh(line, ["steps"])
    if customer_links.steps_of(line, customer_links.CANCEL_FAILED):
        raise DeskActionRefused(
            _("The store refused to cancel this line before. Cancel it in the store's own admin.")
        )
    if customer_links.steps_of(line, customer_links.CANCEL_REQUESTED):
        raise DeskActionRefused(_("A cancellation of this line was asked for already."))
    step = add_step(session, line, customer_links.CANCEL_REQUESTED, line.owed, SUPPORT, note="line")
    step.staff_user = staff_user
    session.flush()
    return line.id


def add_note(session: Session, shop: Shop, email: str, raw: str | None, staff_user: str) -> int:
    text = (raw or "").strip()
    if not text:
        raise DeskActionRefused(_("Write the note first."), 422)
    if len(text) > NOTE_MAX or _has_control(text, allowed="\n\r\t"):
        raise DeskActionRefused(
            _("A note is at most %(count)s characters of plain text.", count=NOTE_MAX), 422
        )
    if not _order_ids(session, shop, email):
        raise DeskActionRefused(_("This shop has no order from this address."), 404)
    note = CustomerNote(
        shop_id=shop.id, customer_email=email.lower(), staff_user=staff_user, text=text
    )
    session.add(note)
    session.flush()
    return note.id
