"""Reconciliation: re-read a shop from its platform and heal drift from missed webhooks.

It reads the store's own facts (time zone, language, country), pages through the whole
catalogue, and re-reads the orders the ledger still owes units on plus every order changed
since the last run, so a missed cancellation or shipment is healed within the schedule's
period. What it changes in the ledger is written in the lines' timelines as a reconciliation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from connectors.base import Connector
from domain import events as ev
from plugin.models import (
    BackorderLine,
    InstallStatus,
    Order,
    OrderLine,
    Shop,
    Variant,
    VariantBadge,
    utcnow,
)
from plugin.platforms import connector_for
from plugin.services import catalog, customer_mails, ledger
from plugin.services.badging import refresh_badge
from plugin.services.shop_time import shop_zone
from plugin.services.storefront_config import push_storefront

log = logging.getLogger(__name__)
# A first reconciliation reads the orders of this period: beyond it nothing can still be owed
# under the Mail Order Rule without a delay notice the customer answered.
FIRST_ORDER_WINDOW = timedelta(days=60)
# Read a little before the last run, so an order changed while it ran is not missed.
ORDER_OVERLAP = timedelta(minutes=5)


@dataclass
class ReconcileReport:
    products: int = 0
    variants: int = 0
    badges_fixed: int = 0
    orders: int = 0
    lines_healed: int = 0
    # Badges the store still lacks after the run (changed now, or a push lost earlier).
    badges_unpushed: int = 0
    # Mails the healed lines call for (queued by the caller once committed).
    mail_ids: list[int] = field(default_factory=list)


def reconcile_shop(
    session: Session, shop: Shop, progress: Callable[[int, int | None], None] | None = None
) -> ReconcileReport:
    report = ReconcileReport()
    now = utcnow()
    # The first reconciliation after an install meets weeks of orders at once: it records them
    # but mails nobody. Later ones heal missed webhooks, and the customers hear as usual.
    first_sync = shop.orders_synced_at is None
    connector = connector_for(shop, session)
    connector.prepare_store()
    apply_store_facts(shop, connector.fetch_store())
    cause = ledger.Cause("reconcile", note="healed by reconciliation")
    to_settle: dict[int, Variant] = {}
    for page in connector.iter_catalog():
        for facts in page.products:
            report.products += 1
            for variant in catalog.upsert_product(session, shop, facts, now):
                report.variants += 1
                to_settle[variant.id] = variant
        if progress:
            progress(report.products, page.total)
    # After the catalogue, so the locations it reported stock at are known and can be named.
    catalog.name_locations(session, shop.id, connector.fetch_locations())
    for variant in _reconcile_orders(session, shop, connector, report):
        to_settle[variant.id] = variant
    session.flush()
    with_orders = ledger.variants_with_open_orders(session, shop.id)
    steps = []
    for variant in to_settle.values():
        if variant.id in with_orders:
            settled = ledger.settle_variant(session, variant, cause, now)
            report.lines_healed += settled.lines_changed
            steps.extend(settled.steps)
    for variant in to_settle.values():
        if refresh_badge(session, shop, variant, cause="reconcile", now=now):
            report.badges_fixed += 1
    if steps and not first_sync:  # after the badges: a confirmation shows the shopper's ETA
        report.mail_ids = customer_mails.after_settling(
            session, shop, steps, customer_mails.app_links()
        )
    # Labels per language and colours where the storefront reads them (skipped when unchanged).
    push_storefront(session, shop, connector)
    shop.orders_synced_at = now
    session.flush()
    report.badges_unpushed = count_unpushed_badges(session, shop.id)
    return report


def count_unpushed_badges(session: Session, shop_id: int) -> int:
    """Badges of the shop whose latest version the store has not received."""
    return session.scalar(
        select(func.count())
        .select_from(VariantBadge)
        .where(VariantBadge.shop_id == shop_id, VariantBadge.pushed_version < VariantBadge.version)
    )


def shops_with_unpushed_badges(session: Session, older_than: timedelta) -> list[int]:
    """Installed shops with a badge decided more than `older_than` ago and still not pushed:
    its push was lost (Redis restarted) or gave up. A fresher one still has its job coming."""
    return list(
        session.scalars(
            select(VariantBadge.shop_id)
            .join(Shop, Shop.id == VariantBadge.shop_id)
            .where(
                Shop.status == InstallStatus.INSTALLED,
                VariantBadge.pushed_version < VariantBadge.version,
                VariantBadge.decided_at < utcnow() - older_than,
            )
            .distinct()
        )
    )


def apply_store_facts(shop: Shop, facts: ev.StoreFacts) -> None:
    """Keep what the platform says of the store; a value it does not give is left alone."""
    if facts.timezone and shop_zone(facts.timezone).key == facts.timezone:
        shop.timezone = facts.timezone
    if facts.locale:
        shop.locale = facts.locale[:35]
    if facts.country and len(facts.country) == 2:
        shop.country = facts.country.upper()
    if facts.contact_email:
        shop.contact_email = facts.contact_email[:255]
    if facts.storefront_origins:
        shop.storefront_origins = [origin[:255] for origin in facts.storefront_origins[:10]]
    if facts.published_locales:
        shop.published_locales = [locale[:35] for locale in facts.published_locales[:30]]
    if facts.name and (not shop.name or shop.name == shop.domain):
        shop.name = facts.name[:255]


def _reconcile_orders(
    session: Session, shop: Shop, connector: Connector, report: ReconcileReport
) -> list[Variant]:
    """Orders changed since the last run, and every order the ledger still owes units on."""
    since = (shop.orders_synced_at or utcnow() - FIRST_ORDER_WINDOW) - ORDER_OVERLAP
    seen: set[str] = set()
    touched: list[Variant] = []

    def apply(facts: ev.OrderFacts) -> None:
        seen.add(facts.order_id)
        report.orders += 1
        changed = ledger.record_order(
            session, shop, facts, lambda ref: _mirrored(session, shop, ref)
        )
        touched.extend(changed or [])

    for facts in connector.orders_changed_since(since):
        apply(facts)
    owed = session.scalars(
        select(Order.platform_id)
        .join(OrderLine, OrderLine.order_id == Order.id)
        .join(BackorderLine, BackorderLine.order_line_id == OrderLine.id)
        .where(Order.shop_id == shop.id, BackorderLine.status.in_(ledger.OWING))
        .distinct()
    )
    for order_id in [o for o in owed if o not in seen]:
        facts = connector.fetch_order(order_id)
        if facts is None:
            log.info("order %s of %s no longer exists on the platform", order_id, shop.domain)
            continue
        apply(facts)
    return touched


def _mirrored(session: Session, shop: Shop, ref: ev.VariantRef) -> Variant | None:
    # The catalogue was read just before: a variant not mirrored by now is not the store's.
    return catalog.find_variant(session, shop.id, ref)
