"""Delivering decided badges to the store, latest state only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from domain.badges import BadgeKind, BadgePush, PushResult
from plugin.models import BadgePushRecord, Shop, Variant, VariantBadge, utcnow
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
            # What `to_push` reads, in two statements for the whole batch rather than two
            # per badge.
            .options(selectinload(VariantBadge.variant).selectinload(Variant.product))
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


@dataclass(frozen=True)
class PushAttempt:
    """What one badge delivery tried to write, kept so a failed try can be recorded after the
    unit of work rolled back."""

    variant_id: int
    version: int
    state: BadgeKind
    eta: date | None


def push_pending(
    session: Session, shop: Shop, attempted: list[PushAttempt] | None = None
) -> tuple[int, bool]:
    """Push one batch of pending badges. Returns (pushed, more_pending).

    The connector raises if any write fails; the caller's unit of work then rolls back, the
    badges stay pending and the job is retried, so no write is dropped. `attempted` is filled
    with what this try sends, so the caller can record a failure in its own transaction
    (`record_failed_push`). Each delivery is recorded (`BadgePushRecord`) in the same unit of
    work as the pushed version.
    """
    badges = pending_badges(session, shop.id)
    if not badges:
        return 0, False
    tries = [PushAttempt(b.variant_id, b.version, b.state, b.eta) for b in badges]
    if attempted is not None:
        attempted.extend(tries)
    result = connector_for(shop, session).push_badges([to_push(b) for b in badges])
    remember_policies(badges, result)
    now = utcnow()
    for badge in badges:
        badge.pushed_version = badge.version
        badge.pushed_at = now
    session.add_all(_records(shop.id, tries, now, "pushed"))
    return len(badges), len(badges) == PUSH_BATCH


def record_failed_push(
    session: Session, shop_id: int, attempted: list[PushAttempt], error: str
) -> None:
    """In its own transaction after the push's rollback: the failed try stays in each
    variant's timeline while the badges stay pending for the retry."""
    session.add_all(_records(shop_id, attempted, utcnow(), "failed", error[:4000]))


def _records(
    shop_id: int, tries: list[PushAttempt], at: datetime, outcome: str, error: str | None = None
) -> list[BadgePushRecord]:
    return [
        BadgePushRecord(
            shop_id=shop_id,
            variant_id=t.variant_id,
            version=t.version,
            state=t.state,
            eta=t.eta,
            at=at,
            outcome=outcome,
            error=error,
        )
        for t in tries
    ]
