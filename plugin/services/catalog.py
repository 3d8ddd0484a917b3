"""Keeping the app's mirror of a shop's catalogue in step with the platform's facts.

Every write compares the platform's timestamp with the one already applied, so a late, older
delivery never overrides newer stock or product data. Stock locations and the store's own
backorder counting are learnt from the facts as they are applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from domain.events import LocationFacts, ProductFacts, VariantFacts, VariantRef
from plugin.models import InventoryLevel, Product, Shop, StoreLocation, StoreSettings, Variant
from plugin.services import batch_reads

# The column's length (StoreLocation.name).
MAX_LOCATION_NAME = 255


def find_variant(session: Session, shop_id: int, ref: VariantRef) -> Variant | None:
    """By variant id first, then by inventory item (a platform may keep stock per product, so
    an order of any of its variants draws on the one item the mirror holds)."""
    reads = batch_reads.current(session, shop_id)
    if reads is not None and (found := reads.variant(ref)) is not None:
        return found  # read and locked with the rest of its drain batch
    for column, value in (
        (Variant.platform_id, ref.variant_id),
        (Variant.inventory_item_id, ref.inventory_item_id),
    ):
        if value is None:
            continue
        query = select(Variant).where(Variant.shop_id == shop_id, column == value)
        variant = session.scalars(query.with_for_update(key_share=True)).first()
        if variant is not None:
            return variant
    return None


def all_mirrored(session: Session, shop_id: int, facts: ProductFacts) -> bool:
    """Whether every variant the facts name is already in the mirror."""
    ids = [v.platform_id for v in facts.variants]
    if not ids:
        return True
    found = session.scalars(
        select(Variant.platform_id).where(Variant.shop_id == shop_id, Variant.platform_id.in_(ids))
    )
    return set(found) == set(ids)


def is_stale(applied_at: datetime | None, occurred_at: datetime) -> bool:
    return applied_at is not None and occurred_at < applied_at


def upsert_product(
    session: Session, shop: Shop, facts: ProductFacts, occurred_at: datetime
) -> list[Variant]:
    """Apply a full product snapshot; returns the variants whose facts changed or are new."""
    batch_reads.drop(session)  # variants may be added or change: read afresh from here on
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
            select(Variant).where(Variant.product_id == product.id).with_for_update(key_share=True)
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


def merchant_sells_past_zero(variant: Variant, store_continues: bool) -> bool:
    """The merchant's own choice, even while the store shows a policy the app wrote.

    When the store holds exactly what the app last wrote, the platform is echoing the app's
    change: the merchant's choice is the one remembered then. Anything else is the merchant's.
    """
    store_policy = "CONTINUE" if store_continues else "DENY"
    if variant.app_policy is not None and variant.app_policy == store_policy:
        return variant.merchant_policy == "CONTINUE"
    return store_continues


def _apply_variant_facts(
    session: Session, shop: Shop, variant: Variant, facts: VariantFacts, occurred_at: datetime
) -> None:
    variant.sku = facts.sku
    variant.title = facts.title
    variant.inventory_item_id = facts.inventory_item_id
    if facts.tracked is not None:
        variant.tracked = facts.tracked
    variant.sells_past_zero = merchant_sells_past_zero(variant, facts.sells_past_zero)
    variant.native_backorder_limit = facts.native_backorder_limit
    variant.native_backordered = facts.native_backordered
    if facts.native_backorder_limit is not None and not shop.native_backorders:
        shop.native_backorders = True
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
        remember_location(session, variant.shop_id, location_id)
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


def remember_location(
    session: Session, shop_id: int, location_id: str, name: str | None = None
) -> None:
    """Record a stock location the first time the store reports one (two workers may race),
    and the merchant's name for it when the platform gave one."""
    name = name[:MAX_LOCATION_NAME] if name else None
    if name is None and location_id in location_ids(session, shop_id):
        return  # known already, and no name to keep: no round trip per new level
    batch_reads.this_transaction(session, _LOCATIONS_READ).pop(shop_id, None)
    query = select(StoreLocation).where(
        StoreLocation.shop_id == shop_id, StoreLocation.location_id == location_id
    )
    location = session.scalars(query).first()
    if location is not None:
        if name and location.name != name:
            location.name = name
        return
    try:
        with session.begin_nested():
            session.add(StoreLocation(shop_id=shop_id, location_id=location_id, name=name))
    except IntegrityError:
        pass  # another worker recorded it first


def name_locations(session: Session, shop_id: int, facts: Iterable[LocationFacts]) -> None:
    """Keep the platform's names of the locations the store reports stock at.

    Only locations already seen in stock figures are named, not added: the settings page
    offers those, and a location added here without stock would make "every location ticked"
    look like a partial choice (which stops new locations from counting)."""
    names = {f.id: f.name[:MAX_LOCATION_NAME] for f in facts if f.name}
    if not names:
        return
    rows = session.scalars(
        select(StoreLocation).where(
            StoreLocation.shop_id == shop_id, StoreLocation.location_id.in_(list(names))
        )
    )
    for row in rows:
        if row.name != names[row.location_id]:
            row.name = names[row.location_id]


def location_names(session: Session, shop_id: int) -> dict[str, str]:
    """Location id -> the merchant's name for it, for the locations the platform named."""
    rows = session.execute(
        select(StoreLocation.location_id, StoreLocation.name).where(
            StoreLocation.shop_id == shop_id, StoreLocation.name.is_not(None)
        )
    )
    return {location_id: name for location_id, name in rows if name}


# Per transaction (`batch_reads.this_transaction`): {shop id: its location ids}.
_LOCATIONS_READ = "catalog.location_ids"


def location_ids(session: Session, shop_id: int) -> tuple[str, ...]:
    """Every stock location the store has reported, in the store's own numbering order.

    Read once per transaction and shop: a drain translates many events of one shop in one
    unit of work, and each translation asks. `remember_location`, the only writer, forgets it."""
    read = batch_reads.this_transaction(session, _LOCATIONS_READ)
    if shop_id not in read:
        found = session.scalars(
            select(StoreLocation.location_id).where(StoreLocation.shop_id == shop_id)
        )
        read[shop_id] = tuple(sorted(found, key=lambda x: (len(x), x)))
    return read[shop_id]
