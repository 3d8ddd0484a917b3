"""Deciding a variant's badge from the mirror and recording the transition if it changed."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.base import can_backorder_automatically
from domain.badges import BadgeKind
from plugin.badge_engine import (
    BadgeRules,
    BadgeState,
    InventorySnapshot,
    VariantOverrides,
    decide_badge,
)
from plugin.models import (
    BadgeTransition,
    Shop,
    StoreSettings,
    Variant,
    VariantBadge,
    utcnow,
)
from plugin.services import restock_alerts
from plugin.services.ledger import units_owed
from plugin.services.shop_time import format_eta, shop_today
from plugin.services.store_calendar import closed_dates

# The states a shopper may sign up for alerts on.
WAITED_FOR = (BadgeKind.OUT_OF_STOCK, BadgeKind.BACKORDER)


def rules_from(
    settings: StoreSettings | None, closed: frozenset = frozenset(), *, can_enforce: bool = True
) -> BadgeRules:
    """`can_enforce`: whether the store's checkout can be made to sell past zero; where it
    cannot, a saved "backorder automatically" must not promise shoppers a backorder."""
    if settings is None:
        return BadgeRules()
    return BadgeRules(
        enabled=settings.enabled,
        auto_backorder=settings.auto_backorder and can_enforce,
        default_lead_days=settings.default_lead_days,
        business_days=settings.business_days,
        closed_dates=closed if settings.business_days else frozenset(),
        label_in_stock=settings.label_in_stock,
        label_backorder=settings.label_backorder,
        label_out_of_stock=settings.label_out_of_stock,
    )


def decide_for_variant(
    session: Session, shop: Shop, variant: Variant, today: date | None = None
) -> BadgeState:
    # A platform's native backorder count and limit, where it has them, replace the app's own.
    if variant.native_backorder_limit is not None:
        units = variant.native_backordered or 0
        limit = variant.native_backorder_limit
    else:
        units = units_owed(session, variant)
        limit = variant.backorder_limit
    today = today or shop_today(shop.timezone)
    closed = closed_dates(shop, today) if shop.settings and shop.settings.business_days else None
    return decide_badge(
        rules_from(
            shop.settings,
            closed or frozenset(),
            can_enforce=can_backorder_automatically(shop.platform.value, shop.native_backorders),
        ),
        InventorySnapshot(
            available=variant.inventory_total,
            sells_past_zero=variant.sells_past_zero,
            tracked=variant.tracked,
        ),
        VariantOverrides(
            eta=variant.eta_override,
            lead_days=variant.lead_days_override,
            backorder_limit=limit,
        ),
        units,
        today,
        format_eta=lambda eta: format_eta(eta, shop.locale),
    )


def refresh_badge(
    session: Session,
    shop: Shop,
    variant: Variant,
    *,
    cause: str,
    webhook_event_id: int | None = None,
    now: datetime | None = None,
    staff_user: str | None = None,
) -> VariantBadge | None:
    """Decide again; if anything a shopper would see changed, store it and log the transition.

    Returns the badge when it changed (so the caller schedules a push), else None.
    """
    now = now or utcnow()
    decision = decide_for_variant(session, shop, variant, shop_today(shop.timezone, now))
    badge = session.get(VariantBadge, variant.id)
    if badge is not None and (
        badge.state,
        badge.label,
        badge.eta,
        badge.enforced_policy,
    ) == (decision.state, decision.label, decision.eta, decision.enforced_policy):
        return None

    session.add(
        BadgeTransition(
            shop_id=shop.id,
            variant_id=variant.id,
            from_state=badge.state if badge else None,
            to_state=decision.state,
            from_eta=badge.eta if badge else None,
            to_eta=decision.eta,
            label=decision.label,
            reason=decision.reason,
            webhook_event_id=webhook_event_id,
            cause=cause,
            staff_user=staff_user,
            created_at=now,
        )
    )
    if decision.state == BadgeKind.IN_STOCK and badge is not None and badge.state in WAITED_FOR:
        # Back in stock: whoever waits for it hears, in fair batches (a row, not a job, here).
        restock_alerts.open_restock(session, shop, variant, now)
    if badge is None:
        badge = VariantBadge(variant_id=variant.id, shop_id=shop.id, version=0, pushed_version=0)
        session.add(badge)
    badge.state = decision.state
    badge.label = decision.label
    badge.eta = decision.eta
    badge.reason = decision.reason
    badge.enforced_policy = decision.enforced_policy
    badge.version = (badge.version or 0) + 1
    badge.decided_at = now
    return badge


def refresh_shop_badges(session: Session, shop: Shop, *, cause: str) -> int:
    """Re-decide every variant of a shop (after a settings change); returns how many changed."""
    changed = 0
    variants = session.scalars(select(Variant).where(Variant.shop_id == shop.id))
    for variant in variants:
        if refresh_badge(session, shop, variant, cause=cause) is not None:
            changed += 1
    return changed
