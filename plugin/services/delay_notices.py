"""Delay notices under the US Mail, Internet or Telephone Order Rule (16 CFR 435).

A backordered line must ship by the date the customer was told, or within 30 days of the order
when no date was stated. Once a still-open line passes that date the customer gets a delay
notice: the revised date (or that none is known, and why), their right to cancel for a full
refund, and the free cancel link. Silence counts as consent only for a first, definite delay of
30 days or less; a longer or indefinite delay, and every later notice, asks for the customer's
express consent ("I'll wait" link). Without it by the revised date (30 days after the notice
when no date is known) the line is flagged to the merchant as owed a cancellation and refund.

The date the customer was told is the variant's badge ETA when they ordered, read from the
badge's transitions (see `promised_date`). Each notice
is a `delay_notified` step in the line's timeline whose note holds its number, revised date,
whether consent was asked and by when; the mail's key is `delay:<line id>:<n>`, so a rerun of
the job sends nothing twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import (
    BackorderLine,
    BackorderStatus,
    Order,
    OrderLine,
    Shop,
    VariantBadge,
    utcnow,
)
from plugin.services import outbox
from plugin.services.customer_links import (
    CANCEL_OWED,
    CANCEL_REQUESTED,
    DELAY_NOTIFIED,
    Notice,
    cancel_url,
    consent_url,
    consented_to,
    notices,
    steps_of,
)
from plugin.services.ledger import add_step, eta_told_at_order
from plugin.services.mail_templates import compose
from plugin.services.shop_time import shop_today, shop_zone

NO_DATE_STATED = timedelta(days=30)
# A definite delay up to this long may go ahead on the customer's silence (first notice only).
SILENT_CONSENT_LIMIT = timedelta(days=30)
# How long an indefinite delay waits for consent before the line is owed a cancellation.
INDEFINITE_CONSENT_WINDOW = timedelta(days=30)
CAUSE = "mail_order_rule"


@dataclass
class Run:
    notices: int = 0
    flagged: int = 0
    mail_ids: list[int] = field(default_factory=list)


def promised_date(session: Session, shop: Shop, line: BackorderLine) -> tuple[date, bool]:
    """The date the customer was told (True), or 30 days after the order where none was.

    The date written down when the line went on backorder (`promised_eta`); for lines older
    than that record, the same reading of the badge's history (`eta_told_at_order`)."""
    eta = line.promised_eta or eta_told_at_order(session, line)
    if eta is not None:
        return eta, True
    ordered = line.ordered_at.astimezone(shop_zone(shop.timezone)).date()
    return ordered + NO_DATE_STATED, False


def _open_lines(session: Session, shop: Shop) -> list[BackorderLine]:
    return list(
        session.scalars(
            select(BackorderLine)
            .join(OrderLine, OrderLine.id == BackorderLine.order_line_id)
            .join(Order, Order.id == OrderLine.order_id)
            .where(
                BackorderLine.shop_id == shop.id,
                BackorderLine.status == BackorderStatus.OPEN,
                BackorderLine.open_quantity > 0,
                Order.cancelled_at.is_(None),
            )
            .order_by(BackorderLine.ordered_at, BackorderLine.id)
        )
    )


def run_shop(
    session: Session,
    shop: Shop,
    *,
    app_url: str,
    secret_key: str,
    now: datetime | None = None,
) -> Run:
    """Send the notices due today and flag the lines whose consent did not come."""
    now = now or utcnow()
    today = shop_today(shop.timezone, now)
    run = Run()
    for line in _open_lines(session, shop):
        if steps_of(line, CANCEL_REQUESTED) or steps_of(line, CANCEL_OWED):
            continue  # the customer or the law has already settled it: the merchant acts
        sent = notices(line)
        last = sent[-1] if sent else None
        if last is None:
            promised, _stated = promised_date(session, shop, line)
            if today <= promised:
                continue
        elif last.consent_required and not consented_to(line, last.number):
            if last.consent_due and today > date.fromisoformat(last.consent_due):
                _flag(session, line, now, f"no consent to delay notice {last.number}")
                run.flagged += 1
            continue
        elif last.revised is None or today <= date.fromisoformat(last.revised):
            # Agreed to wait without a date: they may cancel until it ships; nothing is due.
            continue
        if _notify(session, shop, line, sent, today, now, app_url, secret_key, run):
            run.notices += 1
        else:
            run.flagged += 1
    return run


def _flag(session: Session, line: BackorderLine, now: datetime, why: str) -> None:
    add_step(session, line, CANCEL_OWED, line.open_quantity, CAUSE, note=why, at=now)


def _notify(
    session: Session,
    shop: Shop,
    line: BackorderLine,
    sent: list[Notice],
    today: date,
    now: datetime,
    app_url: str,
    secret_key: str,
    run: Run,
) -> bool:
    order = line.order
    if not order.customer_email:
        _flag(session, line, now, "past its date, and no address to send a delay notice to")
        return False
    promised, stated = promised_date(session, shop, line)
    badge = session.get(VariantBadge, line.variant_id)
    # A date support set for this one line (and told the customer) stands over the variant's.
    current = line.eta_override or (badge.eta if badge is not None else None)
    revised = current if current and current > today else None
    number = len(sent) + 1
    consent_required = number > 1 or revised is None or (revised - promised) > SILENT_CONSENT_LIMIT
    due = revised if revised is not None else today + INDEFINITE_CONSENT_WINDOW
    notice = Notice(
        number=number,
        revised=revised.isoformat() if revised else None,
        consent_required=consent_required,
        consent_due=due.isoformat() if consent_required else None,
    )
    reason = ""
    if revised is None:
        reason = (badge.reason if badge is not None else "") or (
            "the supplier has not given us a new delivery date yet"
        )
    variant = line.variant
    product = variant.product.title if variant.product else ""
    if variant.title and variant.title != "Default Title":
        product = f"{product} ({variant.title})" if product else variant.title
    context = {
        "shop_name": shop.name or shop.domain,
        "customer_name": order.customer_name or "",
        "order_name": order.name or order.platform_id,
        "product": product,
        "promised_eta": promised if stated else None,
        "new_eta": revised,
        "reason": reason,
        "cancel_url": cancel_url(app_url, secret_key, line.id),
        "consent_url": consent_url(app_url, secret_key, line.id, number)
        if consent_required
        else "",
    }
    locale = order.customer_locale or shop.locale or "en"
    mail = compose(session, shop, "delay_notice", locale, context)
    mail_id = outbox.queue_mail(
        session,
        shop,
        kind="delay_notice",
        recipient=order.customer_email,
        key=f"delay:{line.id}:{number}",
        mail=mail,
        order_id=order.id,
        backorder_line_id=line.id,
    )
    add_step(session, line, DELAY_NOTIFIED, line.open_quantity, CAUSE, note=notice.note(), at=now)
    session.flush()
    if mail_id is not None:
        run.mail_ids.append(mail_id)
    return True


def due_shops(session: Session) -> list[int]:
    """Installed shops that send delay notices."""
    from plugin.models import InstallStatus, StoreSettings

    return list(
        session.scalars(
            select(Shop.id)
            .join(StoreSettings, StoreSettings.shop_id == Shop.id)
            .where(
                Shop.status == InstallStatus.INSTALLED,
                StoreSettings.email_delay_notice.is_(True),
            )
            .order_by(Shop.id)
        )
    )
