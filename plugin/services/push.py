"""Delivering decided badges to the store, latest state only."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from domain.badges import BadgePush, PushResult
from plugin.models import Shop, Variant, VariantBadge, utcnow
from plugin.platforms import connector_for
from plugin.services.shop_time import format_eta

PUSH_BATCH = 250


def pending_badges(session: Session, shop_id: int, limit: int = PUSH_BATCH) -> list[VariantBadge]:
    return list(
        session.scalars(
            select(VariantBadge)
            .where(
                VariantBadge.shop_id == shop_id, VariantBadge.pushed_version < VariantBadge.version
            )
            .order_by(VariantBadge.decided_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def to_push(badge: VariantBadge) -> BadgePush:
    variant: Variant = badge.variant
    return BadgePush(
        variant_platform_id=variant.platform_id,
        product_platform_id=variant.product.platform_id,
        state=badge.state.value,
        label=badge.label,
        eta=badge.eta,
        eta_text=format_eta(badge.eta),
        enforced_policy=badge.enforced_policy,
        merchant_sells_past_zero=variant.sells_past_zero,
        inventory_item_id=variant.inventory_item_id,
        applied_policy=variant.app_policy,
    )


def remember_policies(badges: list[VariantBadge], result: PushResult) -> None:
    """Keep what the connector says the app now holds over each merchant's selling policy."""
    for badge in badges:
        variant = badge.variant
        if variant.platform_id in result.policies:
            applied = result.policies[variant.platform_id]
            variant.app_policy = applied.app if applied else None
            variant.merchant_policy = applied.merchant if applied else None


def push_pending(session: Session, shop: Shop) -> tuple[int, bool]:
    """Push one batch of pending badges. Returns (pushed, more_pending).

    The connector raises if any write fails; the caller's unit of work then rolls back, the
    badges stay pending and the job is retried, so no write is dropped.
    """
    badges = pending_badges(session, shop.id)
    if not badges:
        return 0, False
    result = connector_for(shop, session).push_badges([to_push(b) for b in badges])
    remember_policies(badges, result)
    now = utcnow()
    for badge in badges:
        badge.pushed_version = badge.version
        badge.pushed_at = now
    return len(badges), len(badges) == PUSH_BATCH
