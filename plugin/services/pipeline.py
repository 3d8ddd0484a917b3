"""From a stored webhook to updated mirror, decided badges and an audit trail.

Runs inside one unit of work per inbox event. The stored event is translated into the app's own
events by its platform's webhook source; a thin payload's `Fetch` request is answered by the
shop's connector. From there on nothing here is platform-specific.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session, joinedload, object_session

from connectors.base import Connector
from domain import events as ev
from plugin.models import InboxStatus, Shop, Variant, WebhookAttempt, WebhookEvent, utcnow
from plugin.platforms import connector_for, webhook_source
from plugin.services import batch_reads, catalog, compliance, customer_mails, ledger, shops
from plugin.services.badging import refresh_badge
from plugin.services.inbox import stored_delivery
from webhooks.source import UNTRANSLATABLE, StoreContext

log = logging.getLogger(__name__)
# Statuses a worker leaves alone: done, not needed, or never processable.
FINAL = (InboxStatus.PROCESSED, InboxStatus.IGNORED, InboxStatus.DEAD_LETTER)


@dataclass
class Outcome:
    """What the caller must do once the unit of work has committed."""

    shop_id: int | None = None
    badges_changed: int = 0
    notes: list[str] = field(default_factory=list)
    # Customer mails queued in this unit of work: `plugin.jobs.queue_mails` after the commit.
    mail_ids: list[int] = field(default_factory=list)


class _Work:
    """One event's unit of work: the shop, its inbox row, and one connector, built only if a
    fact must be read from the store (the connector keeps its reads for the whole event)."""

    def __init__(self, session: Session, shop: Shop, inbox: WebhookEvent, now: datetime):
        self.session = session
        self.shop = shop
        self.inbox = inbox
        self.now = now
        self._connector: Connector | None = None

    @property
    def connector(self) -> Connector:
        if self._connector is None:
            self._connector = connector_for(self.shop, self.session)
        return self._connector


def process_inbox_event(
    session: Session, event_id: int, now: datetime | None = None, *, locked: bool = False
) -> Outcome:
    """`locked`: the caller already holds the inbox row locked (SELECT ... FOR UPDATE) in this
    session, so it is taken from the session instead of being read again."""
    now = now or utcnow()
    inbox = session.get(WebhookEvent, event_id, with_for_update=None if locked else True)
    outcome = Outcome()
    if inbox is None or inbox.status in FINAL:
        return outcome  # already done (or redacted): a retry or duplicate changes nothing

    # The attempt and its count are written once, with the outcome (`_finish`): in one
    # transaction a row written at the start and updated at the end is the same as one written
    # at the end, and a failure rolls both back anyway (`record_failure` writes its own).
    attempt = WebhookAttempt(number=inbox.attempts + 1, started_at=now)

    # With its settings (every badge decision reads them): one round trip, not two.
    shop = (
        session.get(Shop, inbox.shop_id, options=[joinedload(Shop.settings)])
        if inbox.shop_id
        else None
    )
    if shop is None:
        _finish(inbox, attempt, InboxStatus.IGNORED, "shop unknown or not installed")
        return outcome
    try:
        app_events = webhook_source(inbox.platform).to_events(
            stored_delivery(inbox), store_context(session, shop)
        )
    except UNTRANSLATABLE as exc:
        # The translation reads no store and no database: it fails the same way every time.
        # Kept as a dead letter for support to see, instead of failing through every retry.
        if shop.is_active:
            _dead_letter(inbox, attempt, f"{type(exc).__name__}: {exc}")
            return outcome
        app_events = []  # an uninstalled shop's delivery is only read for privacy requests
    except Exception:
        if shop.is_active:
            raise  # recorded as failed and retried
        app_events = []
    compliance_only = bool(app_events) and all(
        isinstance(e, ev.COMPLIANCE_EVENTS) for e in app_events
    )
    if not shop.is_active and not compliance_only:
        _finish(inbox, attempt, InboxStatus.IGNORED, "shop unknown or not installed")
        return outcome
    outcome.shop_id = shop.id

    work = _Work(session, shop, inbox, now)
    for app_event in app_events:
        _apply(work, app_event, outcome)
    _finish(inbox, attempt, InboxStatus.PROCESSED, "; ".join(outcome.notes) or None)
    return outcome


def read_ahead(session: Session, shop_id: int, inbox: list[WebhookEvent]) -> None:
    """Before a drain batch is processed in one unit of work: read and lock what its stock
    changes will ask for, in a few statements for all of them (`batch_reads`). Translating is
    pure, so doing it here as well costs no round trip."""
    shop = session.get(Shop, shop_id, options=[joinedload(Shop.settings)])
    if shop is None or not shop.is_active:
        return
    context = store_context(session, shop)
    refs = []
    for row in inbox:
        if row.status in FINAL:
            continue
        try:
            app_events = webhook_source(row.platform).to_events(stored_delivery(row), context)
        except Exception:  # noqa: S112 - processing meets it again and records it
            continue
        refs.extend(e.variant for e in app_events if isinstance(e, ev.InventoryChanged))
    batch_reads.read_ahead(session, shop, refs)


def store_context(session: Session, shop: Shop) -> StoreContext:
    return StoreContext(
        location_ids=catalog.location_ids(session, shop.id),
        native_backorders=shop.native_backorders,
        shop_domain=shop.domain,
    )


def cannot_succeed(exc: BaseException) -> bool:
    """A data error (SQLSTATE class 22: a value longer than its column, out of range, not a
    date) raised while applying a delivery comes from the delivery's own values, so every
    retry fails the same way: it goes to the dead letter state at once, where support sees it
    and `flask webhooks retry --dead-letters` takes it back after a fix."""
    return isinstance(exc, DataError)


def record_failure(session: Session, event_id: int, error: str, *, dead: bool = False) -> None:
    """In its own transaction after a rollback, so the failure's history survives the retry.
    `dead`: it can never succeed (`cannot_succeed`), so it is a dead letter, not retried."""
    inbox = session.get(WebhookEvent, event_id)
    if inbox is None:
        return
    attempt = WebhookAttempt(number=inbox.attempts + 1, started_at=utcnow())
    if dead:
        _dead_letter(inbox, attempt, error)
        return
    inbox.attempts = attempt.number
    inbox.status = InboxStatus.FAILED
    inbox.last_error = error[:4000]
    attempt.event = inbox
    attempt.finished_at = utcnow()
    attempt.outcome = "failed"
    attempt.error = error
    session.add(attempt)


def _dead_letter(inbox: WebhookEvent, attempt: WebhookAttempt, error: str) -> None:
    """It fails the same way every time: kept as a dead letter for support to see (and for
    `flask webhooks retry --dead-letters` after a fix), never retried by itself."""
    log.warning("webhook %s is a dead letter: %s", inbox.id, error.split(":", 1)[0])
    _finish(inbox, attempt, InboxStatus.DEAD_LETTER, None)
    inbox.last_error = f"cannot be processed: {error}"[:4000]
    attempt.error = inbox.last_error


def _finish(inbox: WebhookEvent, attempt: WebhookAttempt, status: InboxStatus, note: str | None):
    inbox.attempts = attempt.number
    attempt.event = inbox
    object_session(inbox).add(attempt)
    inbox.status = status
    inbox.processed_at = utcnow()
    inbox.last_error = None
    attempt.finished_at = inbox.processed_at
    attempt.outcome = status.value
    attempt.error = note


def _apply(work: _Work, app_event: ev.AppEvent, outcome: Outcome) -> None:
    session, shop = work.session, work.shop
    changed: list[Variant] = []
    settle: list[Variant] = []
    if not isinstance(app_event, ev.InventoryChanged):
        batch_reads.drop(session)  # a drain batch's reads were made for stock changes only
    match app_event:
        case ev.ProductChanged():
            facts = _product_facts(work, app_event)
            if facts is None:
                outcome.notes.append(f"product {app_event.product_id} no longer exists")
                return
            changed = catalog.upsert_product(session, shop, facts, app_event.occurred_at)
            settle = list(changed)
        case ev.InventoryChanged():
            variant = _resolve(
                work, app_event.variant, app_event.occurred_at, changed, app_event.fetch
            )
            if variant is None:
                outcome.notes.append("inventory event for an unknown variant")
            elif _apply_level(work, variant, app_event):
                changed.append(variant)
                settle = [variant]
            else:
                outcome.notes.append(f"stale inventory for variant {variant.platform_id} skipped")
        case ev.OrderChanged():
            work.inbox.order_id = app_event.order_id[:64]
            order = app_event.order
            if order is None:
                order = work.connector.fetch_order(app_event.order_id)
                if order is None:
                    outcome.notes.append(f"order {app_event.order_id} no longer exists")
                    return
            touched = ledger.record_order(
                session,
                shop,
                order,
                lambda ref: _resolve(work, ref, order.placed_at, changed),
            )
            if touched is None:
                outcome.notes.append(f"older snapshot of order {order.order_id} skipped")
                return
            changed.extend(touched)
            settle = list(touched)
        case ev.AppUninstalled():
            shops.mark_uninstalled(shop, app_event.occurred_at)
            return
        case ev.CustomerDataRequest() | ev.CustomerRedact() | ev.ShopRedact():
            outcome.notes.append(compliance.handle(session, shop, app_event, work.inbox.id))
            return
        case _:
            raise TypeError(f"no handler for {type(app_event).__name__}")

    if batch_reads.current(session, shop.id) is None:
        session.flush()  # else nothing below reads these rows: flushed with the whole batch
    cause = ledger.Cause(work.inbox.topic, webhook_event_id=work.inbox.id)
    steps = []
    for variant in dict.fromkeys(settle):
        steps.extend(ledger.settle_variant(session, variant, cause, work.now).steps)
    for variant in dict.fromkeys(changed):  # each once, in order
        if refresh_badge(
            session,
            shop,
            variant,
            cause=work.inbox.topic,
            webhook_event_id=work.inbox.id,
            now=work.now,
        ):
            outcome.badges_changed += 1
    if steps:  # after the badges, so a confirmation shows the ETA the shopper saw
        outcome.mail_ids.extend(
            customer_mails.after_settling(session, shop, steps, customer_mails.app_links())
        )


def _product_facts(work: _Work, event: ev.ProductChanged) -> ev.ProductFacts | None:
    """The event's own facts where they are enough, else the product read from the store.

    Partial facts (stock or tracking unknown) can update variants the mirror has, but cannot
    mirror a new one: then the product is read whole.
    """
    facts = event.facts
    if facts is not None and not (
        facts.partial and not catalog.all_mirrored(work.session, work.shop.id, facts)
    ):
        return facts
    fresh_after = event.fetch.fresh_after if event.fetch else None
    return work.connector.fetch_product(event.product_id, fresh_after)


def _apply_level(work: _Work, variant: Variant, event: ev.InventoryChanged) -> bool:
    """Apply one location's stock; False when the event is older than what was applied."""
    session, shop = work.session, work.shop
    available = event.available
    if available is None:
        # Asked by the mirrored variant's own id (for stock kept per product, the item's
        # variant), keeping how the event named it.
        ref = replace(event.variant, variant_id=variant.platform_id)
        fresh_after = event.fetch.fresh_after if event.fetch else None
        available = work.connector.fetch_level(ref, event.location_id, fresh_after)
    if available is None or not catalog.set_level(
        session, variant, event.location_id, available, event.occurred_at
    ):
        return False
    catalog.recompute_total(session, shop, variant)
    return True


def _resolve(
    work: _Work,
    ref: ev.VariantRef,
    occurred_at: datetime,
    changed: list[Variant],
    fetch: ev.Fetch | None = None,
) -> Variant | None:
    """The mirrored variant an event names, mirroring its product first if it is new.

    Every variant mirrored that way goes into `changed`, so each gets its badge now: a sibling's
    own event may be older than this snapshot and be skipped as stale.
    """
    session, shop = work.session, work.shop
    variant = catalog.find_variant(session, shop.id, ref)
    if variant is not None or (ref.variant_id is None and ref.inventory_item_id is None):
        return variant
    facts = work.connector.resolve_variant(ref, fetch.fresh_after if fetch else None)
    if facts is None:
        return None
    # Mirrored as of the event's time: the event itself still applies, and anything newer wins.
    changed.extend(catalog.upsert_product(session, shop, facts, occurred_at))
    session.flush()
    return catalog.find_variant(session, shop.id, ref)
