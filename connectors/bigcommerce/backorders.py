"""Enforcing "backorder automatically" through BigCommerce's native backorders.

BigCommerce has no per-variant "keep selling at zero" switch like Shopify's inventory policy.
Stores with native backorders (beta, 2026) instead give each item a `backorder_limit` per
location: checkout accepts orders up to available stock plus that limit. So where the app
backorders a variant the merchant left at "stop at zero" (a limit of 0), it raises the limit at
each of the item's locations (`PUT /v3/inventory/locations/{location_id}/items`, the documented
way to set `backorder_limit`), and puts 0 back once it no longer enforces one. What it did is
reported as `AppliedPolicy` ("CONTINUE" over the merchant's "DENY"), as the Shopify connector
reports its policy flips, so the app remembers what to restore.

A limit the merchant set themselves is never touched: BigCommerce enforces it at checkout, so a
"deny" decision (the limit is reached) needs no write there. Items whose locations carry no
`backorder_limit` (native backorders off) are left as they are, and nothing is recorded for them.

BigCommerce's guide (beta):
https://docs.bigcommerce.com/developer/docs/admin/catalog-and-inventory/backorders-beta
`backorder_limit` is read with GET /v3/inventory/items and set with PUT
/v3/inventory/locations/{location_id}/items; `qty_backordered` moves only through inventory
adjustments, which the app never makes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from connectors.base import ReauthorisationRequired
from connectors.bigcommerce import mapping
from connectors.bigcommerce.client import BigCommerceClient
from domain.badges import AppliedPolicy, BadgePush

log = logging.getLogger(__name__)

# The limit the app sets while it backorders a variant automatically: far beyond any real order
# (the Inventory API takes up to 2,147,483,647 per location), so checkout never stops at it.
# Like any native limit it is then read back as the store's own count and limit.
AUTO_BACKORDER_LIMIT = 1_000_000
# PUT /v3/inventory/locations/{id}/items takes up to 2,000 items per request.
SETTINGS_PER_CALL = 2000


def write_limits(
    client: BigCommerceClient,
    pushes: Sequence[BadgePush],
    items_for: Callable[[list[str]], list[dict]],
    is_product_level: Callable[[BadgePush], bool],
) -> dict[str, AppliedPolicy | None]:
    """Raise or restore native backorder limits as the pushes ask; returns what the app now
    holds over each changed variant's own setting (None: the merchant's own is back).

    `items_for(product_ids)` reads the products' Inventory API items (one call per 1,000)."""
    wanted: dict[str, tuple[BadgePush, int, AppliedPolicy | None]] = {}
    for push in pushes:
        change = _change(push)
        if change is not None:
            wanted[push.variant_platform_id] = (push, *change)
    if not wanted:
        return {}
    products = sorted({push.product_platform_id for push, _, _ in wanted.values()}, key=int)
    items = items_for(products)
    by_location: dict[str, list[dict]] = {}
    changed: dict[str, AppliedPolicy | None] = {}
    for variant_id, (push, limit, applied) in wanted.items():
        product_level = is_product_level(push)
        item = _item(items, push, product_level)
        native = [
            str(loc["location_id"])
            for loc in (item or {}).get("locations") or []
            if loc.get("location_enabled", True) is not False and _has_native_limit(loc)
        ]
        if not native:
            continue  # native backorders are off for this item: nothing to enforce with
        identity = (
            {"product_id": int(push.product_platform_id)}
            if product_level
            else {"variant_id": int(variant_id)}
        )
        for location_id in native:
            by_location.setdefault(location_id, []).append(
                {"identity": identity, "backorder_limit": limit}
            )
        changed[variant_id] = applied
    try:
        for location_id, settings in sorted(by_location.items()):
            for start in range(0, len(settings), SETTINGS_PER_CALL):
                client.request(
                    "PUT",
                    f"/v3/inventory/locations/{location_id}/items",
                    json={"settings": settings[start : start + SETTINGS_PER_CALL]},
                )
    except ReauthorisationRequired as exc:
        # 403: the store has not granted the `store_inventory` (modify) scope yet. The badges
        # themselves landed; nothing is recorded, so the next push tries again once it has.
        log.warning("cannot set backorder limits on %s: %s", client.store_hash, exc)
        return {}
    return changed


def _change(push: BadgePush) -> tuple[int, AppliedPolicy | None] | None:
    """(limit to write, what the app then holds) for one push, or None for no write."""
    merchant = "CONTINUE" if push.merchant_sells_past_zero else "DENY"
    mine = push.applied_policy
    if push.enforced_policy == "continue":
        if (mine or merchant) == "CONTINUE":
            return None  # the store sells past zero already
        return AUTO_BACKORDER_LIMIT, AppliedPolicy(app="CONTINUE", merchant=merchant)
    if mine == "CONTINUE":
        # No longer enforced (or the app's own limit is reached): the merchant's 0 goes back.
        return 0, None
    return None


def _item(items: list[dict], push: BadgePush, product_level: bool) -> dict | None:
    if product_level:
        mine = [
            it
            for it in items
            if str((it.get("identity") or {}).get("product_id")) == push.product_platform_id
        ]
        return mapping.pick_product_item(mine, push.variant_platform_id)
    return next(
        (
            it
            for it in items
            if str((it.get("identity") or {}).get("variant_id")) == push.variant_platform_id
        ),
        None,
    )


def _has_native_limit(location: dict) -> bool:
    settings = location.get("settings") or {}
    return "backorder_limit" in location or "backorder_limit" in settings
