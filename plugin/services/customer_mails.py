"""The mails a waiting customer gets as their backorder moves: queued in the outbox in the
same unit of work as the change that causes them, once per fact.

- **Backorder confirmation** (`confirmation:<order id>`): one mail per order whose lines went
  on backorder, listing each backordered line with the ETA its badge shows.
- **ETA change** (`eta_change:<line id>:<step id>`): when the merchant moves a variant's ETA
  (a fixed date, the lead time, the calendar), each customer with an open line is told the old
  and the new date, and the merchant's reason if they gave one. Each move is an `eta_changed`
  step in the line's timeline (note: JSON with from, to, reason). Moves within the shop's quiet
  period update the line's one pending notice instead of adding another: the old date stays
  the first one the customer was told, the new date is the latest, and a date moved back to
  where it was sends nothing. Dates moved earlier are mailed only if the shop asks for it.
- **Ships soon** (`ships_soon:<line id>:<step id>`): when restocked units are allocated to a
  line; a partly covered line says how many of its units are coming.

Only the shop's switched-on kinds are queued, and only to an order with an address; a line
without one is skipped here and stays in the ledger as it is. The callers hand the returned
mail ids to `plugin.jobs.queue_mails` once their unit of work has committed.

The badge ETA rolling forward with the calendar (a lead time counted from today) is not a move
the customer hears about: ETA changes are taken from the merchant's settings saves, and the
Mail Order Rule's delay notices cover a line that passes its date.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import (
    BackorderLine,
    BackorderStatus,
    BackorderStep,
    MailStatus,
    Order,
    OrderLine,
    OutboxMail,
    Shop,
    Variant,
    VariantBadge,
    utcnow,
)
from plugin.services import outbox
from plugin.services.customer_links import cancel_url
from plugin.services.ledger import add_step, owing_lines, promise_etas
from plugin.services.mail_templates import compose

ETA_CHANGED = "eta_changed"
CONFIRMATION = "backorder_confirmation"
ETA_CHANGE = "eta_change"
SHIPS_SOON = "ships_soon"


@dataclass(frozen=True)
class Links:
    """What the signed cancel links are built from (the app's URL and SECRET_KEY)."""

    app_url: str
    secret_key: str

    def cancel(self, line_id: int) -> str:
        return cancel_url(self.app_url, self.secret_key, line_id)


def app_links() -> Links | None:
    """The running app's links, or None outside an app (no cancel link then)."""
    from flask import current_app, has_app_context

    if not has_app_context():
        return None
    settings = current_app.extensions["settings"]
    return Links(settings.app_url, settings.secret_key)


def product_name(variant: Variant) -> str:
    product = variant.product.title if variant.product else ""
    if variant.title and variant.title != "Default Title":
        return f"{product} ({variant.title})" if product else variant.title
    return product


def _locale(shop: Shop, order: Order) -> str:
    return order.customer_locale or shop.locale or "en"


def _on(shop: Shop, flag: str) -> bool:
    return bool(shop.settings is not None and getattr(shop.settings, flag))


def _badge_eta(session: Session, variant_id: int) -> date | None:
    badge = session.get(VariantBadge, variant_id)
    return badge.eta if badge is not None else None


# --- from the ledger: confirmations and ships soon -----------------------------------------------


def after_settling(
    session: Session,
    shop: Shop,
    steps: Iterable[BackorderStep],
    links: Links | None = None,
) -> list[int]:
    """Queue the mails the ledger's new steps call for (call after the badges were refreshed,
    so a confirmation shows the ETA the shopper saw). Returns the new mails' ids."""
    steps = list(steps)
    promise_etas(session, steps)  # the date this confirmation tells is the one promised
    ids: list[int] = []
    opened: dict[int, Order] = {}
    for step in steps:
        if step.kind == "opened":
            order = step.line.order
            opened.setdefault(order.id, order)
    if opened and _on(shop, "email_backorder_confirmation"):
        for order in opened.values():
            ids.extend(_confirmation(session, shop, order, links))
    if _on(shop, "email_ships_soon"):
        for step in steps:
            if step.kind == "allocated":
                ids.extend(_ships_soon(session, shop, step, links))
    return ids


def _confirmation(session: Session, shop: Shop, order: Order, links: Links | None) -> list[int]:
    if not order.customer_email or order.cancelled_at is not None:
        return []
    backordered = session.scalars(
        select(BackorderLine)
        .join(OrderLine, OrderLine.id == BackorderLine.order_line_id)
        .where(OrderLine.order_id == order.id)
        .order_by(BackorderLine.id)
    )
    waiting = [b for b in backordered if b.open_quantity + b.allocated_quantity > 0]
    if not waiting:
        return []
    context = {
        "shop_name": shop.name or shop.domain,
        "customer_name": order.customer_name or "",
        "order_name": order.name or order.platform_id,
        "lines": [
            {
                "product": product_name(b.variant),
                "quantity": b.open_quantity + b.allocated_quantity,
                "eta": _badge_eta(session, b.variant_id),
            }
            for b in waiting
        ],
        "cancel_url": links.cancel(waiting[0].id) if links else "",
    }
    mail = compose(session, shop, CONFIRMATION, _locale(shop, order), context)
    mail_id = outbox.queue_mail(
        session,
        shop,
        kind=CONFIRMATION,
        recipient=order.customer_email,
        key=f"confirmation:{order.id}",
        mail=mail,
        order_id=order.id,
        backorder_line_id=waiting[0].id,
    )
    return [mail_id] if mail_id is not None else []


def _ships_soon(
    session: Session, shop: Shop, step: BackorderStep, links: Links | None
) -> list[int]:
    line = step.line
    order = line.order
    if not order.customer_email or order.cancelled_at is not None:
        return []
    covered = line.allocated_quantity
    owed = line.open_quantity + line.allocated_quantity
    if covered <= 0:
        return []
    context = {
        "shop_name": shop.name or shop.domain,
        "customer_name": order.customer_name or "",
        "order_name": order.name or order.platform_id,
        "product": product_name(line.variant),
        "units": covered,
        "of_units": owed,
    }
    mail = compose(session, shop, SHIPS_SOON, _locale(shop, order), context)
    session.flush()  # the step's id names the fact
    mail_id = outbox.queue_mail(
        session,
        shop,
        kind=SHIPS_SOON,
        recipient=order.customer_email,
        key=f"ships_soon:{line.id}:{step.id}",
        mail=mail,
        order_id=order.id,
        backorder_line_id=line.id,
    )
    return [mail_id] if mail_id is not None else []


# --- from the merchant's settings: ETA changes ---------------------------------------------------


def badge_etas(session: Session, shop: Shop) -> dict[int, date | None]:
    """Every variant's badge ETA now: taken before a save, compared after it."""
    return dict(
        session.execute(
            select(VariantBadge.variant_id, VariantBadge.eta).where(VariantBadge.shop_id == shop.id)
        ).all()
    )


def eta_moves(
    before: dict[int, date | None], after: dict[int, date | None]
) -> dict[int, tuple[date, date]]:
    """Variants whose ETA moved from one date to another (a badge gaining or losing its date
    is a change of state, not a move)."""
    return {
        variant_id: (before[variant_id], eta)
        for variant_id, eta in after.items()
        if eta is not None and before.get(variant_id) is not None and before[variant_id] != eta
    }


def after_eta_moves(
    session: Session,
    shop: Shop,
    moves: dict[int, tuple[date, date]],
    *,
    reason: str = "",
    cause: str = "settings",
    links: Links | None = None,
    now: datetime | None = None,
) -> list[int]:
    """Record each move on the open lines' timelines and queue (or update) their notices.
    Returns the ids of mails queued or updated."""
    now = now or utcnow()
    reason = (reason or "").strip()
    ids: list[int] = []
    for line in owing_lines(session, moves):
        if line.status != BackorderStatus.OPEN or line.open_quantity <= 0:
            continue
        if line.eta_override is not None:
            continue  # support gave this customer their own date: the variant's does not apply
        old, new = moves[line.variant_id]
        note = json.dumps({"from": old.isoformat(), "to": new.isoformat(), "reason": reason})
        step = add_step(session, line, ETA_CHANGED, line.open_quantity, cause, note=note, at=now)
        session.flush()
        if not _on(shop, "email_eta_changed"):
            continue
        mail_id = _eta_notice(session, shop, line, step, links, now)
        if mail_id is not None:
            ids.append(mail_id)
    return ids


def _pending_notice(session: Session, line: BackorderLine, now: datetime) -> OutboxMail | None:
    return session.scalars(
        select(OutboxMail)
        .where(
            OutboxMail.backorder_line_id == line.id,
            OutboxMail.kind == ETA_CHANGE,
            OutboxMail.status == MailStatus.PENDING,
            OutboxMail.send_after > now,
        )
        .order_by(OutboxMail.id.desc())
        .with_for_update()
    ).first()


def _moves_since(session: Session, line: BackorderLine, first_step_id: int) -> list[dict]:
    """The line's ETA moves from the one its pending notice was queued for, in order."""
    notes = session.scalars(
        select(BackorderStep.note)
        .where(
            BackorderStep.line_id == line.id,
            BackorderStep.kind == ETA_CHANGED,
            BackorderStep.id >= first_step_id,
        )
        .order_by(BackorderStep.id)
    )
    return [json.loads(note) for note in notes if note]


def _first_step_id(mail: OutboxMail) -> int:
    """The step an ETA notice was queued for: its key is eta_change:<line id>:<step id>."""
    return int(mail.idempotency_key.rsplit(":", 1)[1])


def _eta_notice(
    session: Session,
    shop: Shop,
    line: BackorderLine,
    step: BackorderStep,
    links: Links | None,
    now: datetime,
) -> int | None:
    order = line.order
    if not order.customer_email or order.cancelled_at is not None:
        return None
    pending = _pending_notice(session, line, now)
    moves = _moves_since(session, line, _first_step_id(pending)) if pending else []
    moves = moves or [json.loads(step.note)]
    old = date.fromisoformat(moves[0]["from"])
    new = date.fromisoformat(moves[-1]["to"])
    reason = next((m["reason"] for m in reversed(moves) if m.get("reason")), "")
    wanted = new != old and (new > old or _on(shop, "email_eta_earlier"))
    if not wanted:
        if pending is not None:
            pending.status = MailStatus.SUPPRESSED
            pending.last_error = (
                "the date moved back before the quiet period ended"
                if new == old
                else "the date moved earlier, and the shop does not mail earlier dates"
            )
        return None
    context = {
        "shop_name": shop.name or shop.domain,
        "customer_name": order.customer_name or "",
        "order_name": order.name or order.platform_id,
        "product": product_name(line.variant),
        "old_eta": old,
        "new_eta": new,
        "reason": reason,
        "cancel_url": links.cancel(line.id) if links else "",
    }
    mail = compose(session, shop, ETA_CHANGE, _locale(shop, order), context)
    if pending is not None:
        pending.subject, pending.text_body, pending.html_body = mail.subject, mail.text, mail.html
        pending.locale = mail.locale
        return pending.id
    quiet = shop.settings.email_quiet_minutes if shop.settings else 0
    return outbox.queue_mail(
        session,
        shop,
        kind=ETA_CHANGE,
        recipient=order.customer_email,
        key=f"eta_change:{line.id}:{step.id}",
        mail=mail,
        send_after=now + timedelta(minutes=max(0, quiet or 0)),
        order_id=order.id,
        backorder_line_id=line.id,
    )
