"""From a stored webhook to updated mirror, decided badges and an audit trail.

Runs inside one unit of work per inbox event. The stored event is translated into the app's own
events by its platform's translator; from there on nothing here is platform-specific.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from connectors import connector_for
from plugin.models import InboxStatus, Shop, Variant, WebhookAttempt, WebhookEvent, utcnow
from plugin.services import backorders, catalog, compliance, shops
from plugin.services.badging import refresh_badge
from webhooks import events as ev
from webhooks.registry import source_for

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What the caller must do once the unit of work has committed."""

    shop_id: int | None = None
    badges_changed: int = 0
    notes: list[str] = field(default_factory=list)


def process_inbox_event(session: Session, event_id: int, now: datetime | None = None) -> Outcome:
    now = now or utcnow()
    inbox = session.get(WebhookEvent, event_id, with_for_update=True)
    outcome = Outcome()
    if inbox is None or inbox.status in (InboxStatus.PROCESSED, InboxStatus.IGNORED):
        return outcome  # already done (or redacted): a retry or duplicate changes nothing

    inbox.attempts += 1
    attempt = WebhookAttempt(event=inbox, number=inbox.attempts, started_at=now)
    session.add(attempt)

    shop = session.get(Shop, inbox.shop_id) if inbox.shop_id else None
    if shop is None or (not shop.is_active and not _is_compliance(inbox.topic)):
        _finish(inbox, attempt, InboxStatus.IGNORED, "shop unknown or not installed")
        return outcome
    outcome.shop_id = shop.id

    app_events = source_for(inbox.platform).to_events(inbox)
    for app_event in app_events:
        _apply(session, shop, inbox, app_event, outcome, now)
    _finish(inbox, attempt, InboxStatus.PROCESSED, "; ".join(outcome.notes) or None)
    return outcome


def record_failure(session: Session, event_id: int, error: str) -> None:
    """In its own transaction after a rollback, so the failure's history survives the retry."""
    inbox = session.get(WebhookEvent, event_id)
    if inbox is None:
        return
    inbox.attempts += 1
    inbox.status = InboxStatus.FAILED
    inbox.last_error = error[:4000]
    session.add(
        WebhookAttempt(
            event=inbox, number=inbox.attempts, finished_at=utcnow(), outcome="failed", error=error
        )
    )


def _finish(inbox: WebhookEvent, attempt: WebhookAttempt, status: InboxStatus, note: str | None):
    inbox.status = status
    inbox.processed_at = utcnow()
    inbox.last_error = None
    attempt.finished_at = inbox.processed_at
    attempt.outcome = status.value
    attempt.error = note


def _is_compliance(topic: str) -> bool:
    return topic in {"customers/data_request", "customers/redact", "shop/redact"}


def _apply(session, shop: Shop, inbox: WebhookEvent, app_event, outcome: Outcome, now) -> None:
    changed: list[Variant] = []
    match app_event:
        case ev.ProductChanged():
            facts = app_event.facts or connector_for(shop, session).fetch_product(
                app_event.product_id
            )
            if facts is None:
                outcome.notes.append(f"product {app_event.product_id} no longer exists")
                return
            changed = catalog.upsert_product(session, shop, facts, app_event.occurred_at)
        case ev.InventoryChanged():
            variant = _resolve(session, shop, app_event.variant, app_event.occurred_at, changed)
            if variant is None:
                outcome.notes.append("inventory event for an unknown variant")
            elif _apply_level(session, shop, variant, app_event, now):
                changed.append(variant)
            else:
                outcome.notes.append(f"stale inventory for variant {variant.platform_id} skipped")
        case ev.OrderCreated():
            if app_event.needs_fetch:
                fetched = connector_for(shop, session).fetch_order(app_event.order_id)
                if fetched is None:
                    outcome.notes.append(f"order {app_event.order_id} no longer exists")
                    return
                app_event = fetched
            for line in app_event.lines:
                variant = _resolve(session, shop, line.variant, app_event.occurred_at, changed)
                if variant is None:
                    continue
                backorders.record_backorder_line(
                    session,
                    variant,
                    order_id=app_event.order_id,
                    line_id=line.line_id,
                    order_name=app_event.order_name,
                    quantity=line.quantity,
                    customer_email=app_event.customer_email,
                    ordered_at=app_event.occurred_at,
                )
                changed.append(variant)
        case ev.AppUninstalled():
            shops.mark_uninstalled(shop, app_event.occurred_at)
            return
        case ev.CustomerDataRequest() | ev.CustomerRedact() | ev.ShopRedact():
            outcome.notes.append(compliance.handle(session, shop, app_event, inbox.id))
            return
        case _:
            raise TypeError(f"no handler for {type(app_event).__name__}")

    session.flush()
    for variant in dict.fromkeys(changed):  # each once, in order
        if refresh_badge(
            session, shop, variant, cause=inbox.topic, webhook_event_id=inbox.id, now=now
        ):
            outcome.badges_changed += 1


def _apply_level(session: Session, shop: Shop, variant: Variant, event, now) -> bool:
    """Apply one location's stock; False when the event is older than what was applied."""
    available = event.available
    if available is None:
        available = connector_for(shop, session).fetch_level(event.variant, event.location_id)
    if available is None or not catalog.set_level(
        session, variant, event.location_id, available, event.occurred_at
    ):
        return False
    catalog.recompute_total(session, shop, variant)
    backorders.allocate_restocked(session, variant, now)
    return True


def _resolve(
    session: Session,
    shop: Shop,
    ref: ev.VariantRef,
    occurred_at: datetime,
    changed: list[Variant],
) -> Variant | None:
    """The mirrored variant an event names, mirroring its product first if it is new.

    Every variant mirrored that way goes into `changed`, so each gets its badge now: a sibling's
    own event may be older than this snapshot and be skipped as stale.
    """
    variant = catalog.find_variant(session, shop.id, ref)
    if variant is not None or (ref.variant_id is None and ref.inventory_item_id is None):
        return variant
    facts = connector_for(shop, session).resolve_variant(ref)
    if facts is None:
        return None
    # Mirrored as of the event's time: the event itself still applies, and anything newer wins.
    changed.extend(catalog.upsert_product(session, shop, facts, occurred_at))
    session.flush()
    return catalog.find_variant(session, shop.id, ref)
