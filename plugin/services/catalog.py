"""Keeping the app's mirror of a shop's catalogue in step with the platform's facts.

Every write compares the platform's timestamp with the one already applied, so a late, older
delivery never overrides newer stock or product data.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugin.models import InventoryLevel, Product, Shop, StoreSettings, Variant
from webhooks.events import ProductFacts, VariantFacts, VariantRef


def find_variant(session: Session, shop_id: int, ref: VariantRef) -> Variant | None:
    query = select(Variant).where(Variant.shop_id == shop_id)
    if ref.variant_id is not None:
        query = query.where(Variant.platform_id == ref.variant_id)
    elif ref.inventory_item_id is not None:
        query = query.where(Variant.inventory_item_id == ref.inventory_item_id)
    else:
        return None
    return session.scalars(query.with_for_update()).first()


def is_stale(applied_at: datetime | None, occurred_at: datetime) -> bool:
    return applied_at is not None and occurred_at < applied_at


def upsert_product(
    session: Session, shop: Shop, facts: ProductFacts, occurred_at: datetime
) -> list[Variant]:
    """Apply a full product snapshot; returns the variants whose facts changed or are new."""
    product = _product_row(session, shop, facts)
    if is_stale(product.source_updated_at, occurred_at):
        return []
    product.title = facts.title
    product.source_updated_at = occurred_at

    # Lock the variants so a concurrent inventory event for one of them waits for this write
    # (and then recomputes its total from the levels written here), instead of racing it.
    existing = {
        v.platform_id: v
        for v in session.scalars(
            select(Variant).where(Variant.product_id == product.id).with_for_update()
        )
    }
    touched: list[Variant] = []
    for variant_facts in facts.variants:
        variant = existing.pop(variant_facts.platform_id, None)
        if variant is None:
            variant = session.scalars(
                select(Variant).where(
                    Variant.shop_id == shop.id, Variant.platform_id == variant_facts.platform_id
                )
            ).first()
            if variant is None:
                variant = Variant(shop_id=shop.id, platform_id=variant_facts.platform_id)
                session.add(variant)
            variant.product = product
        if is_stale(variant.source_updated_at, occurred_at):
            continue
        _apply_variant_facts(session, shop, variant, variant_facts, occurred_at)
        touched.append(variant)
    for gone in existing.values():
        session.delete(gone)
    session.flush()
    return touched


def _product_row(session: Session, shop: Shop, facts: ProductFacts) -> Product:
    """The mirrored product, inserted if new. Two workers may meet a new product at once: the
    loser of the insert race reads the winner's row instead of failing its job."""
    query = select(Product).where(
        Product.shop_id == shop.id, Product.platform_id == facts.platform_id
    )
    product = session.scalars(query).first()
    if product is not None:
        return product
    try:
        with session.begin_nested():
            product = Product(shop_id=shop.id, platform_id=facts.platform_id, title=facts.title)
            session.add(product)
        return product
    except IntegrityError:
        return session.scalars(query).one()


def _apply_variant_facts(
    session: Session, shop: Shop, variant: Variant, facts: VariantFacts, occurred_at: datetime
) -> None:
    variant.sku = facts.sku
    variant.title = facts.title
    variant.inventory_item_id = facts.inventory_item_id
    variant.tracked = facts.tracked
    variant.sells_past_zero = facts.sells_past_zero
    variant.native_backorder_limit = facts.native_backorder_limit
    variant.native_backordered = facts.native_backordered
    variant.source_updated_at = occurred_at
    if facts.levels is not None:
        session.flush()
        for location_id, available in facts.levels.items():
            set_level(session, variant, location_id, available, occurred_at)
    recompute_total(session, shop, variant)


def set_level(
    session: Session, variant: Variant, location_id: str, available: int, occurred_at: datetime
) -> bool:
    """Record stock at one location unless a newer figure was already applied there."""
    level = next((lv for lv in variant.levels if lv.location_id == location_id), None)
    if level is None:
        level = InventoryLevel(shop_id=variant.shop_id, location_id=location_id)
        variant.levels.append(level)
    elif is_stale(level.source_updated_at, occurred_at):
        return False
    level.available = available
    level.source_updated_at = occurred_at
    return True


def counted_locations(settings: StoreSettings | None) -> set[str] | None:
    if settings is None or not settings.location_ids:
        return None
    return set(settings.location_ids)


def recompute_total(session: Session, shop: Shop, variant: Variant) -> None:
    chosen = counted_locations(shop.settings)
    variant.inventory_total = sum(
        level.available for level in variant.levels if chosen is None or level.location_id in chosen
    )


def variants_of_shop(session: Session, shop_id: int, platform_ids: Iterable[str]) -> list[Variant]:
    ids = list(platform_ids)
    if not ids:
        return []
    return list(
        session.scalars(
            select(Variant).where(Variant.shop_id == shop_id, Variant.platform_id.in_(ids))
        )
    )
