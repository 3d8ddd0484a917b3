"""Badges as BigCommerce metafields: one `backorder_badges.badge` metafield per variant (or per
product, for product-level tracking), written through the batch metafield endpoints.

One JSON metafield rather than one per field: state, label and ETA change together, so a shopper
never sees a new state with an old ETA, and each badge costs one write instead of three.
`read_and_sf_access` makes it readable by the storefront GraphQL API and themes.

Upsert without duplicates: BigCommerce allows one metafield per namespace+key per resource per
app; the ids of ours are learnt by listing them (namespace and key filtered, 250 a page) once per
store and kept in the app's shared cache (Redis, so every worker shares them; in memory when
jobs run inline), so a steady-state push is one PUT per 50 badges. Only a resource the listing
showed without one gets a POST. A failed item raises `ConnectorError` and forgets what was
learnt, so the retried job lists again instead of guessing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from connectors.base import ConnectorError, KeyValueCache
from connectors.bigcommerce.client import BigCommerceClient, RequestRefused
from domain.badges import BadgePush

NAMESPACE = "backorder_badges"
KEY = "badge"
PERMISSION_SET = "read_and_sf_access"
DESCRIPTION = "Backorder Badges: the badge and ETA shown on the product page"
BATCH_SIZE = 50
LIST_LIMIT = 250
MAX_LIST_PAGES = 1000
KINDS = ("variants", "products")

IDS_TTL_S = 7 * 24 * 3600
_LISTED = "listed"


def _cache_key(client: BigCommerceClient, kind: str) -> str:
    return f"bb:bigcommerce:metafield-ids:{client.store_hash}:{kind}"


def badge_value(push: BadgePush) -> str:
    return json.dumps(
        {
            "state": push.state,
            "label": push.label,
            "eta": push.eta.isoformat() if push.eta else None,
            "eta_text": push.eta_text,
        },
        separators=(",", ":"),
        sort_keys=True,
    )


def push(
    client: BigCommerceClient, cache: KeyValueCache, kind: str, values: dict[str, str]
) -> None:
    """Write `values` ({resource id: metafield value}) for one kind ("variants" | "products")."""
    if not values:
        return
    known = _known(client, cache, kind)
    updates = [{"id": known[rid], "value": value} for rid, value in values.items() if rid in known]
    creates = [
        {
            "namespace": NAMESPACE,
            "key": KEY,
            "value": value,
            "permission_set": PERMISSION_SET,
            "description": DESCRIPTION,
            "resource_id": int(rid),
        }
        for rid, value in values.items()
        if rid not in known
    ]
    path = f"/v3/catalog/{kind}/metafields"
    for method, rows in (("PUT", updates), ("POST", creates)):
        for start in range(0, len(rows), BATCH_SIZE):
            chunk = rows[start : start + BATCH_SIZE]
            try:
                body = client.request(method, path, json=chunk)
            except RequestRefused as exc:
                _forget(client, cache, kind)
                raise ConnectorError(f"badge metafields not written: {exc}") from exc
            _learn(client, cache, kind, body.get("data") or [])
            if body.get("errors"):
                _forget(client, cache, kind)
                raise ConnectorError(f"badge metafields partly written: {body['errors']!r:.500}")


def push_all(
    client: BigCommerceClient,
    cache: KeyValueCache,
    pushes: Sequence[BadgePush],
    is_product_level,
) -> None:
    """Split pushes into variant and product metafields and write both."""
    by_kind: dict[str, dict[str, str]] = {kind: {} for kind in KINDS}
    for item in pushes:
        if is_product_level(item):
            by_kind["products"][item.product_platform_id] = badge_value(item)
        else:
            by_kind["variants"][item.variant_platform_id] = badge_value(item)
    for kind in KINDS:
        push(client, cache, kind, by_kind[kind])


def _known(client: BigCommerceClient, cache: KeyValueCache, kind: str) -> dict[str, int]:
    stored = {k: int(v) for k, v in cache.get_map(_cache_key(client, kind)).items()}
    if stored.pop(_LISTED, None) is not None:
        return stored
    found = _list(client, kind)
    _save(client, cache, kind, {**found, _LISTED: 1})
    return found


def _save(client: BigCommerceClient, cache: KeyValueCache, kind: str, ids: dict[str, int]):
    cache.update_map(_cache_key(client, kind), {k: str(v) for k, v in ids.items()}, IDS_TTL_S)


def _list(client: BigCommerceClient, kind: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for page in range(1, MAX_LIST_PAGES + 1):
        body = client.request(
            "GET",
            f"/v3/catalog/{kind}/metafields",
            params={"namespace": NAMESPACE, "key": KEY, "limit": LIST_LIMIT, "page": page},
        )
        for row in body.get("data") or []:
            found[str(row["resource_id"])] = int(row["id"])
        pagination = (body.get("meta") or {}).get("pagination") or {}
        if page >= int(pagination.get("total_pages") or 1):
            break
    return found


def _learn(client: BigCommerceClient, cache: KeyValueCache, kind: str, rows: list[dict]) -> None:
    learnt = {
        str(row["resource_id"]): int(row["id"])
        for row in rows
        if row.get("id") is not None and row.get("resource_id") is not None
    }
    if learnt:
        _save(client, cache, kind, learnt)


def _forget(client: BigCommerceClient, cache: KeyValueCache, kind: str) -> None:
    cache.delete(_cache_key(client, kind))
