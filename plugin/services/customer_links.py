"""The links in customer mails: cancel a backordered line (or the whole order), and consent to
a delay ("I'll wait").

Each link is a token signed with the app's SECRET_KEY under a salt of its own, naming one
backorder line (and, for consent, the delay notice it answers); it expires after LINK_MAX_AGE.
Opening a link changes nothing; the customer confirms on the page (a POST). What the customer
did is a step in the line's timeline, so support staff and the merchant see it:

- `cancel_requested` (cause "customer"; note "line" or "order"): the merchant is told (flagged
  in the admin, and a mail to the shop's contact address). Where the shop lets the app cancel
  on the platform, a job does it through the connector and records `cancel_done` or
  `cancel_failed`, then re-reads the order so the ledger follows at once.
- `consented` (note: the notice number): the customer agreed to wait for that delay.

A link already used, superseded or too late explains itself and changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import (
    BackorderLine,
    BackorderStep,
    Order,
    OrderLine,
    Shop,
    utcnow,
)
from plugin.services import ledger, outbox
from plugin.services.ledger import add_step

CANCEL_SALT = "backorder-cancel-link"
CONSENT_SALT = "backorder-delay-consent-link"
# Long enough to outlast a delay notice's 30-day window with room to spare.
LINK_MAX_AGE = timedelta(days=45)

CANCEL_REQUESTED = "cancel_requested"
CANCEL_DONE = "cancel_done"
CANCEL_FAILED = "cancel_failed"
CONSENTED = "consented"
CANCEL_OWED = "cancel_owed"
DELAY_NOTIFIED = "delay_notified"
CUSTOMER = "customer"


class LinkRefused(Exception):
    """Why a link does nothing: `reason` is one of forged, expired, used, closed, late."""

    def __init__(self, reason: str, line: BackorderLine | None = None):
        super().__init__(reason)
        self.reason = reason
        self.line = line


def _serializer(secret_key: str, salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=salt)


def cancel_token(secret_key: str, line_id: int) -> str:
    return _serializer(secret_key, CANCEL_SALT).dumps({"line": line_id})


def consent_token(secret_key: str, line_id: int, notice: int) -> str:
    return _serializer(secret_key, CONSENT_SALT).dumps({"line": line_id, "notice": notice})


def cancel_url(app_url: str, secret_key: str, line_id: int) -> str:
    return f"{app_url}/orders/cancel/{cancel_token(secret_key, line_id)}"


def consent_url(app_url: str, secret_key: str, line_id: int, notice: int) -> str:
    return f"{app_url}/orders/wait/{consent_token(secret_key, line_id, notice)}"


def _read(secret_key: str, salt: str, token: str) -> dict:
    try:
        payload = _serializer(secret_key, salt).loads(
            token, max_age=int(LINK_MAX_AGE.total_seconds())
        )
    except SignatureExpired as exc:
        raise LinkRefused("expired") from exc
    except BadSignature as exc:
        raise LinkRefused("forged") from exc
    if not isinstance(payload, dict) or not isinstance(payload.get("line"), int):
        raise LinkRefused("forged")
    return payload


def _line(session: Session, line_id: int) -> BackorderLine:
    line = session.get(BackorderLine, line_id)
    if line is None:  # deleted with its shop, or never existed
        raise LinkRefused("forged")
    return line


def steps_of(line: BackorderLine, kind: str) -> list[BackorderStep]:
    return [s for s in line.steps if s.kind == kind]


# Cancelling ---------------------------------------------------------------------------------


def open_cancel_link(session: Session, secret_key: str, token: str) -> BackorderLine:
    """The line a cancel link names, if it can still be cancelled; else LinkRefused."""
    line = _line(session, _read(secret_key, CANCEL_SALT, token)["line"])
    if steps_of(line, CANCEL_REQUESTED):
        raise LinkRefused("used", line)
    if line.status not in ledger.OWING:
        raise LinkRefused("closed", line)
    return line


def other_lines(session: Session, line: BackorderLine) -> list[BackorderLine]:
    """The order's other backorder lines still owed (cancelled with it when the customer
    cancels the whole order)."""
    return [
        other
        for other in session.scalars(
            select(BackorderLine)
            .join(OrderLine, OrderLine.id == BackorderLine.order_line_id)
            .where(
                OrderLine.order_id == line.order_line.order_id,
                BackorderLine.id != line.id,
                BackorderLine.status.in_(ledger.OWING),
            )
            .order_by(BackorderLine.id)
        )
    ]


@dataclass(frozen=True)
class CancelRequest:
    line_id: int
    scope: str  # "line" | "order"
    on_platform: bool
    merchant_mail_id: int | None


def platform_cancel_allowed(shop: Shop) -> bool:
    """Whether the shop lets the app cancel on the platform when a customer asks."""
    return bool(shop.settings and shop.settings.customer_cancel_on_platform)


def request_cancel(session: Session, secret_key: str, token: str, scope: str) -> CancelRequest:
    """The customer confirmed: record the request on the line (and, for the whole order, on
    its other owed lines), tell the merchant. The platform cancel, if allowed, is queued by
    the caller after commit (`plugin.jobs.cancel_on_platform`)."""
    if scope not in ("line", "order"):
        raise ValueError("scope must be 'line' or 'order'")
    line = open_cancel_link(session, secret_key, token)
    # One request per line, even with two tabs open: lock the line, then look again.
    session.execute(select(BackorderLine.id).where(BackorderLine.id == line.id).with_for_update())
    session.refresh(line, ["steps"])
    if steps_of(line, CANCEL_REQUESTED):
        raise LinkRefused("used", line)
    now = utcnow()
    lines = [line, *(other_lines(session, line) if scope == "order" else [])]
    for each in lines:
        if each is not line and steps_of(each, CANCEL_REQUESTED):
            continue
        add_step(session, each, CANCEL_REQUESTED, each.owed, CUSTOMER, note=scope, at=now)
    session.flush()
    shop = session.get(Shop, line.shop_id)
    return CancelRequest(
        line_id=line.id,
        scope=scope,
        on_platform=platform_cancel_allowed(shop),
        merchant_mail_id=_tell_merchant(session, shop, line, scope),
    )


def _tell_merchant(session: Session, shop: Shop, line: BackorderLine, scope: str) -> int | None:
    if not shop.contact_email:
        return None
    order = line.order
    what = "the whole order" if scope == "order" else f"{line.variant.title or 'a line'}"
    product = line.variant.product.title if line.variant.product else ""
    subject = f"Cancellation requested: order {order.name or order.platform_id}"
    text = (
        f"The customer of order {order.name or order.platform_id} asked to cancel {what}"
        f"{f' ({product})' if product and scope == 'line' else ''} through the link in their "
        "backorder mail.\n\n"
        + (
            "The app is cancelling it on the platform; the result shows in the line's timeline.\n"
            if platform_cancel_allowed(shop)
            else "Please cancel it and refund the customer in full.\n"
        )
        + (f"\nOrder in your admin: {order.admin_url}\n" if order.admin_url else "")
    )
    html = "<html><body><pre>" + _escape(text) + "</pre></body></html>"
    return outbox.queue_mail(
        session,
        shop,
        kind="merchant_cancel_request",
        recipient=shop.contact_email,
        key=f"cancel-request:{line.id}",
        mail=outbox.Composed(subject=subject, text=text, html=html, locale=shop.locale or "en"),
        order_id=order.id,
        backorder_line_id=line.id,
    )


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def record_platform_result(
    session: Session, line: BackorderLine, ok: bool, note: str, now=None
) -> None:
    kind = CANCEL_DONE if ok else CANCEL_FAILED
    add_step(session, line, kind, line.owed, CUSTOMER, note=note[:2000], at=now)


def cancel_on_platform(session: Session, line_id: int, connector) -> str:
    """Carry out a customer's cancel request on the platform, once; record the result, then
    re-read the order so the ledger shows the cancellation without waiting for a webhook."""
    line = session.get(BackorderLine, line_id)
    if line is None:
        return f"line {line_id} is gone"
    requested = steps_of(line, CANCEL_REQUESTED)
    if not requested or steps_of(line, CANCEL_DONE) or steps_of(line, CANCEL_FAILED):
        return f"line {line_id}: nothing to cancel"
    scope = requested[-1].note or "line"
    order: Order = line.order
    try:
        if scope == "order":
            note = connector.cancel_order(order.platform_id)
        else:
            note = connector.cancel_line(order.platform_id, line.order_line.platform_id)
    except (RuntimeError, ValueError) as exc:  # ConnectorError, a store's own refusal
        record_platform_result(session, line, False, f"{type(exc).__name__}: {exc}")
        return f"line {line_id}: the platform refused the cancel"
    record_platform_result(session, line, True, note)
    facts = connector.fetch_order(order.platform_id)
    if facts is not None:
        from plugin.services import catalog

        shop = session.get(Shop, line.shop_id)
        changed = ledger.record_order(
            session, shop, facts, lambda ref: catalog.find_variant(session, shop.id, ref)
        )
        for variant in changed or []:
            ledger.settle_variant(session, variant, ledger.Cause(CUSTOMER, note="cancel link"))
    return f"line {line_id}: {note}"


# Consenting to a delay ----------------------------------------------------------------------


@dataclass(frozen=True)
class Notice:
    """A delay notice as its timeline step records it."""

    number: int
    revised: str | None  # ISO date, or None when no date is known
    consent_required: bool
    consent_due: str | None  # ISO date

    @classmethod
    def of(cls, step: BackorderStep) -> Notice:
        data = json.loads(step.note or "{}")
        return cls(
            number=int(data.get("n", 0)),
            revised=data.get("revised"),
            consent_required=bool(data.get("consent")),
            consent_due=data.get("due"),
        )

    def note(self) -> str:
        return json.dumps(
            {
                "n": self.number,
                "revised": self.revised,
                "consent": self.consent_required,
                "due": self.consent_due,
            }
        )


def notices(line: BackorderLine) -> list[Notice]:
    return [Notice.of(s) for s in steps_of(line, DELAY_NOTIFIED)]


def consented_to(line: BackorderLine, number: int) -> bool:
    return any(s.note == str(number) for s in steps_of(line, CONSENTED))


def open_consent_link(session: Session, secret_key: str, token: str) -> tuple[BackorderLine, int]:
    payload = _read(secret_key, CONSENT_SALT, token)
    number = payload.get("notice")
    if not isinstance(number, int):
        raise LinkRefused("forged")
    line = _line(session, payload["line"])
    sent = notices(line)
    if not any(n.number == number for n in sent):
        raise LinkRefused("forged", line)
    if consented_to(line, number):
        raise LinkRefused("used", line)
    if line.status not in ledger.OWING or steps_of(line, CANCEL_REQUESTED):
        raise LinkRefused("closed", line)
    if sent[-1].number != number or steps_of(line, CANCEL_OWED):
        raise LinkRefused("late", line)
    return line, number


def consent(session: Session, secret_key: str, token: str) -> BackorderLine:
    line, number = open_consent_link(session, secret_key, token)
    session.execute(select(BackorderLine.id).where(BackorderLine.id == line.id).with_for_update())
    session.refresh(line, ["steps"])
    if consented_to(line, number):
        raise LinkRefused("used", line)
    add_step(session, line, CONSENTED, line.open_quantity, CUSTOMER, note=str(number))
    session.flush()
    return line


# What the merchant sees ---------------------------------------------------------------------


def merchant_flags(line: BackorderLine) -> list[tuple[str, str]]:
    """(text, tone) for the admin: what the customer asked, and what the law now requires."""
    flags = []
    requested = steps_of(line, CANCEL_REQUESTED)
    if requested:
        what = "order" if requested[-1].note == "order" else "line"
        if steps_of(line, CANCEL_DONE):
            flags.append((f"Customer cancelled the {what}; cancelled on the platform", "info"))
        elif steps_of(line, CANCEL_FAILED):
            flags.append((f"Customer asked to cancel the {what}; the platform refused", "danger"))
        else:
            flags.append((f"Customer asked to cancel the {what}", "warning"))
    elif steps_of(line, CANCEL_OWED):
        flags.append(("Owed a cancellation and refund: no consent to the delay", "danger"))
    elif notices(line):
        last = notices(line)[-1]
        if last.consent_required and not consented_to(line, last.number):
            flags.append((f"Delay notice {last.number} sent; waiting for consent", "warning"))
        else:
            flags.append((f"Delay notice {last.number} sent", "info"))
    return flags
