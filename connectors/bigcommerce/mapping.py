"""From V3 catalog and inventory JSON to the app's `ProductFacts`: pure functions, no HTTP.

How BigCommerce's model maps onto the mirror:
- `inventory_tracking: "variant"`: one mirrored variant per V3 variant, with its own stock.
- `inventory_tracking: "product"`: the stock belongs to the product, so the mirror holds ONE
  variant for it, under the product's base variant id (`base_variant_id`; for a product with
  options, which has none, its lowest variant id), keyed by inventory item id "product:<id>" so
  product-level stock events find it. Its badge is pushed as a product metafield.
- `inventory_tracking: "none"`: every variant, untracked (always "in stock").
- Stock per location comes from the Inventory API (`available_to_sell`, enabled locations
  only); without it, the catalog's `inventory_level` counts at the default location.
- Selling past zero: BigCommerce has no per-variant "continue selling" policy like Shopify's.
  A variant counts as sold past zero when its product's `availability` is "preorder" (the
  storefront takes orders regardless of stock) or when the store's native backorders (beta)
  allow backorders for it (`backorder_limit` > 0 at some location). Native `backorder_limit`
  and `qty_backordered`, when present, are summed over locations and replace the app's own
  limit and count (see `plugin.services.badging`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from domain.events import ProductFacts, VariantFacts
from webhooks.bigcommerce import DEFAULT_LOCATION_IDS, product_item_id

DEFAULT_LOCATION = DEFAULT_LOCATION_IDS[0]


def base_variant_id(product: dict) -> str | None:
    if product.get("base_variant_id"):
        return str(product["base_variant_id"])
    ids = [int(v["id"]) for v in product.get("variants") or [] if v.get("id") is not None]
    return str(min(ids)) if ids else None


def is_tracked(product: dict) -> bool:
    return product.get("inventory_tracking") in ("product", "variant")


def product_facts(product: dict, items: Sequence[dict] = ()) -> ProductFacts:
    """The product as the mirror needs it; `items` are its Inventory API items (may be empty)."""
    product_id = str(product["id"])
    tracking = product.get("inventory_tracking") or "none"
    preorder = product.get("availability") == "preorder"
    title = product.get("name") or ""
    if tracking == "product":
        base_id = base_variant_id(product)
        if base_id is None:
            return ProductFacts(product_id, title, ())
        item = pick_product_item(items, base_id)
        return ProductFacts(
            product_id,
            title,
            (
                _variant(
                    base_id,
                    sku=product.get("sku") or "",
                    title="",
                    tracked=True,
                    preorder=preorder,
                    item=item,
                    catalog_level=product.get("inventory_level"),
                    inventory_item_id=product_item_id(product_id),
                ),
            ),
        )
    by_variant = {_identity(it, "variant_id"): it for it in items}
    tracked = tracking == "variant"
    return ProductFacts(
        product_id,
        title,
        tuple(
            _variant(
                str(v["id"]),
                sku=v.get("sku") or "",
                title=variant_title(v),
                tracked=tracked,
                preorder=preorder,
                item=by_variant.get(str(v["id"])) if tracked else None,
                catalog_level=v.get("inventory_level") if tracked else None,
                inventory_item_id=None,
            )
            for v in product.get("variants") or []
        ),
    )


def variant_title(variant: dict) -> str:
    return " / ".join(
        str(ov.get("label")) for ov in variant.get("option_values") or [] if ov.get("label")
    )


def pick_product_item(items: Iterable[dict], base_id: str | None) -> dict | None:
    """The inventory item holding a product-tracked product's stock."""
    items = list(items)
    for item in items:
        if base_id is not None and _identity(item, "variant_id") == base_id:
            return item
    for item in items:
        if (item.get("identity") or {}).get("sku_id") is None:
            return item
    return items[0] if items else None


def item_levels(item: dict) -> dict[str, int]:
    """Available to sell per enabled location."""
    return {
        str(loc["location_id"]): int(loc.get("available_to_sell") or 0)
        for loc in item.get("locations") or []
        if loc.get("location_enabled", True) is not False
    }


def native_backorders(item: dict | None) -> tuple[int | None, int | None]:
    """(limit, backordered) summed over locations, or (None, None) where the store has none."""
    if item is None:
        return None, None
    limits: list[int] = []
    counts: list[int] = []
    for loc in item.get("locations") or []:
        settings = loc.get("settings") or {}
        limit = loc.get("backorder_limit", settings.get("backorder_limit"))
        count = loc.get("qty_backordered", settings.get("qty_backordered"))
        if limit is not None:
            limits.append(int(limit))
            counts.append(int(count or 0))
    if not limits:
        return None, None
    return sum(limits), sum(counts)


def location_ids(items: Iterable[dict]) -> set[str]:
    return {loc for item in items for loc in item_levels(item)}


def _variant(
    platform_id: str,
    *,
    sku: str,
    title: str,
    tracked: bool,
    preorder: bool,
    item: dict | None,
    catalog_level,
    inventory_item_id: str | None,
) -> VariantFacts:
    limit, backordered = native_backorders(item)
    if not tracked:
        levels = None
    elif item is not None:
        levels = item_levels(item)
    else:
        levels = {DEFAULT_LOCATION: int(catalog_level or 0)}
    return VariantFacts(
        platform_id=platform_id,
        sku=sku,
        title=title,
        inventory_item_id=inventory_item_id,
        tracked=tracked,
        sells_past_zero=preorder or bool(limit),
        levels=levels,
        native_backorder_limit=limit,
        native_backordered=backordered,
    )


def _identity(item: dict, key: str) -> str | None:
    value = (item.get("identity") or {}).get(key)
    return str(value) if value is not None else None
