"""The restock storm's data: the fake store's catalogue, the 1,000 level updates and the
badges they must end in. Kept apart from bench/restock_storm_shopify.py, which runs it."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

from fakes.shopify_graphql import FakeShopify, FakeVariant

LOCATIONS = ("61000001", "61000002")
PRODUCTS, PER_PRODUCT, UPDATES_PER_VARIANT = 10, 10, 10


def build_store(fake: FakeShopify, rng: random.Random) -> list[dict]:
    """10 products x 10 variants, sold out everywhere; a fifth sell past zero."""
    products = []
    for p in range(PRODUCTS):
        product_id = str(9_100_000_000_000 + p)
        variants = []
        for v in range(PER_PRODUCT):
            n = p * PER_PRODUCT + v
            variant_id, item_id = str(44_000_000_000_000 + n), str(47_000_000_000_000 + n)
            policy = "continue" if n % 5 == 0 else "deny"
            fake.add_variant(
                FakeVariant(
                    variant_id,
                    item_id,
                    product_id,
                    f"Size {v}",
                    policy=policy.upper(),
                    levels=dict.fromkeys(LOCATIONS, 0),
                ),
                f"Storm product {p}",
            )
            variants.append(
                {
                    "id": int(variant_id),
                    "product_id": int(product_id),
                    "title": f"Size {v}",
                    "sku": f"STORM-{n}",
                    "inventory_policy": policy,
                    "inventory_item_id": int(item_id),
                    "inventory_quantity": 0,
                }
            )
        products.append(
            {"id": int(product_id), "title": f"Storm product {p}", "variants": variants}
        )
    return products


def storm_events(products: list[dict], rng: random.Random, start) -> list[dict]:
    """1,000 level updates in true time order (round robin over variants), then shuffled in
    windows of 50 to model Shopify's unordered, at-least-once delivery."""
    variants = [v for p in products for v in p["variants"]]
    events, tick = [], 0
    for round_no in range(UPDATES_PER_VARIANT):
        for variant in variants:
            tick += 1
            events.append(
                {
                    "event_id": f"storm-{tick}",
                    "triggered_at": start + timedelta(milliseconds=10 * tick),
                    "payload": {
                        "inventory_item_id": variant["inventory_item_id"],
                        "location_id": int(LOCATIONS[round_no % 2]),
                        "available": rng.choice([0, 0, 1, 2, 3, 5, 8, -1]),
                        "updated_at": (start + timedelta(milliseconds=10 * tick)).isoformat(),
                    },
                }
            )
    delivered = []
    for i in range(0, len(events), 50):
        window = events[i : i + 50]
        rng.shuffle(window)
        delivered.extend(window)
    return delivered


def expected_states(products, events) -> dict[str, str]:
    latest: dict[tuple[int, int], tuple] = {}
    for e in events:
        key = (e["payload"]["inventory_item_id"], e["payload"]["location_id"])
        if key not in latest or e["triggered_at"] > latest[key][0]:
            latest[key] = (e["triggered_at"], e["payload"]["available"])
    expected = {}
    for variant in (v for p in products for v in p["variants"]):
        total = sum(latest[(variant["inventory_item_id"], int(loc))][1] for loc in LOCATIONS)
        if total > 0:
            expected[str(variant["id"])] = "in_stock"
        elif variant["inventory_policy"] == "continue":
            expected[str(variant["id"])] = "backorder"
        else:
            expected[str(variant["id"])] = "out_of_stock"
    return expected


def contend(fake: FakeShopify, points_per_second: float, stop: threading.Event) -> None:
    """Other work of the same app spending the same bucket, outside the storm's calls."""
    last = time.monotonic()
    while not stop.wait(0.05):
        now = time.monotonic()
        with fake.lock:
            fake._restore()
            fake.available = max(0.0, fake.available - points_per_second * (now - last))
        last = now
