"""Variants page benchmark (issue 11): server time of the Variants page and of a bulk edit with
50,000 variants in the shop, against the same requests with 100 variants.

A fresh PostgreSQL database (migrated with the app's migrations) gets a sandbox shop per size:
products of 5 variants each, a third sold out and selling past zero (on backorder), a tenth
with a fixed ETA, a twentieth with a backorder limit, backorder lines owed on 4% of them and
notify-me sign-ups on 2%, every badge decided. Each request goes through the Flask test
client (the whole app: routing, SQL, template), timed in the process; the median of N runs is
reported. The bulk edit sets, then clears, the lead time of everything the "has an ETA" filter
matches (all pages) through the page's bulk form, re-deciding each variant it changes.

Run from the repository root:

    .venv/bin/python bench/variants_page.py --variants 50000 --runs 15

Production-like settings (APP_ENV=production, Redis db 10, which must be empty: a bulk edit
schedules a push there). Everything it creates is removed at the end. Exit status 1 if a page
answers in more than --target-ms (300 by default) at the large size.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402
from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.webhook_ingest import PG_ADMIN_URL, REDIS_URL, production_env  # noqa: E402
from plugin import create_app  # noqa: E402
from plugin.commands import upgrade_database  # noqa: E402
from plugin.extensions import db  # noqa: E402
from plugin.models import (  # noqa: E402
    BackorderLine,
    BadgeKind,
    NotifySubscription,
    Order,
    OrderLine,
    Product,
    Variant,
    VariantBadge,
    utcnow,
)
from plugin.services import sandbox_store  # noqa: E402

PAGES = [
    ("first page", "/sandbox/variants"),
    ("page 40", "/sandbox/variants?page=40"),
    ("search 'tee 7'", "/sandbox/variants?q=tee+7"),
    ("search a SKU", "/sandbox/variants?q=SKU-000777"),
    ("filter: in stock", "/sandbox/variants?state=in_stock"),
    ("filter: backorder", "/sandbox/variants?state=backorder"),
    ("filter: out of stock", "/sandbox/variants?state=out_of_stock"),
    ("filter: has an ETA", "/sandbox/variants?has_eta=1"),
    ("filter: limit reached", "/sandbox/variants?limit_reached=1"),
    ("filter: customers waiting", "/sandbox/variants?waiting=1"),
]


def seed(app, variants: int) -> None:
    """The sandbox shop with `variants` variants, badges, owed lines and sign-ups (bulk SQL)."""
    with app.app_context():
        session = db.session
        shop = sandbox_store.ensure_shop(session)
        session.commit()
        now = utcnow()
        today = now.date()
        products = [
            {"shop_id": shop.id, "platform_id": f"p{n}", "title": f"Tee {n:05d}"}
            for n in range(-(-variants // 5))
        ]
        session.execute(insert(Product), products)
        product_ids = list(session.scalars(select(Product.id).order_by(Product.id)))
        rows = []
        for n in range(variants):
            sold_out = n % 3 == 0
            rows.append(
                {
                    "shop_id": shop.id,
                    "product_id": product_ids[n // 5],
                    "platform_id": f"v{n}",
                    "sku": f"SKU-{n:06d}",
                    "title": ("Small", "Medium", "Large", "XL", "XXL")[n % 5],
                    "inventory_total": 0 if sold_out else n % 40 + 1,
                    "sells_past_zero": sold_out and n % 2 == 0,
                    "eta_override": today + timedelta(days=20 + n % 60) if n % 10 == 0 else None,
                    "backorder_limit": 3 if n % 20 == 0 else None,
                }
            )
        for start in range(0, len(rows), 5000):
            session.execute(insert(Variant), rows[start : start + 5000])
        ids = list(session.scalars(select(Variant.id).order_by(Variant.id)))
        badges = []
        for n, vid in enumerate(ids):
            state = (
                BadgeKind.IN_STOCK
                if n % 3
                else (BadgeKind.BACKORDER if n % 2 == 0 else BadgeKind.OUT_OF_STOCK)
            )
            label = {"in_stock": "In stock", "out_of_stock": "Out of stock"}.get(
                state.value, "Backorder, ships by soon"
            )
            badges.append({"variant_id": vid, "shop_id": shop.id, "state": state, "label": label})
        for start in range(0, len(badges), 5000):
            session.execute(insert(VariantBadge), badges[start : start + 5000])
        owed = [vid for n, vid in enumerate(ids) if n % 25 == 0]
        orders = [
            {"shop_id": shop.id, "platform_id": f"o{vid}", "name": f"#{vid}", "placed_at": now}
            for vid in owed
        ]
        session.execute(insert(Order), orders)
        order_ids = list(session.scalars(select(Order.id).order_by(Order.id)))
        session.execute(
            insert(OrderLine),
            [
                {
                    "shop_id": shop.id,
                    "order_id": oid,
                    "platform_id": f"l{vid}",
                    "variant_id": vid,
                    "ordered_quantity": 2,
                    "current_quantity": 2,
                }
                for oid, vid in zip(order_ids, owed, strict=True)
            ],
        )
        line_ids = list(session.scalars(select(OrderLine.id).order_by(OrderLine.id)))
        session.execute(
            insert(BackorderLine),
            [
                {
                    "shop_id": shop.id,
                    "variant_id": vid,
                    "order_line_id": lid,
                    "ordered_at": now,
                    "quantity": 3,
                    "open_quantity": 3,
                }
                for lid, vid in zip(line_ids, owed, strict=True)
            ],
        )
        session.execute(
            insert(NotifySubscription),
            [
                {
                    "shop_id": shop.id,
                    "variant_id": vid,
                    "email": f"s{vid}@example.com",
                    "token": uuid.uuid4().hex,
                    "consent_text": "ok",
                    "consent_version": "v1",
                    "form": "bench",
                }
                for n, vid in enumerate(ids)
                if n % 50 == 1
            ],
        )
        session.commit()
        session.execute(text("ANALYZE"))
        session.commit()


def median_ms(client, url: str, runs: int, method: str = "get", data=None) -> float:
    client.open(url, method=method.upper(), data=data)  # warm: templates, plans
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.open(url, method=method.upper(), data=data)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code not in (200, 302):
            raise SystemExit(f"{url} answered {response.status_code}")
    return statistics.median(times)


def bulk_ms(app, client, runs: int) -> tuple[float, int]:
    """Median time of a bulk edit over the 'has an ETA' filter (set, then clear: each run
    changes every matched variant)."""
    times = []
    for n in range(runs):
        form = {"scope": "filter", "has_eta": "1", "field": "lead"}
        form.update({"action": "set", "value": str(5 + n)} if n % 2 == 0 else {"action": "clear"})
        started = time.perf_counter()
        response = client.post("/sandbox/variants/bulk", data=form)
        times.append((time.perf_counter() - started) * 1000)
        if response.status_code != 302:
            raise SystemExit(f"bulk edit answered {response.status_code}")
    with app.app_context():
        matched = db.session.scalar(
            select(func.count()).select_from(Variant).where(Variant.eta_override.is_not(None))
        )
    return statistics.median(times), matched


def measure(env: dict, variants: int, runs: int, bulk_runs: int) -> dict[str, float]:
    app = create_app(env)
    with app.app_context():
        upgrade_database()
    seed(app, variants)
    client = app.test_client()
    results = {name: median_ms(client, url, runs) for name, url in PAGES}
    results["save one row"] = median_ms(
        client, "/sandbox/variants", runs, "post", {"variant-1-limit": "7", "row": "1"}
    )
    bulk, matched = bulk_ms(app, client, bulk_runs)
    results[f"bulk edit over a filter ({matched} variants)"] = bulk
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", type=int, default=50_000)
    parser.add_argument("--baseline", type=int, default=100)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--bulk-runs", type=int, default=4)
    parser.add_argument("--target-ms", type=float, default=300.0)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--redis-url", default=REDIS_URL)
    args = parser.parse_args(argv)
    if not 10 <= args.variants <= 500_000 or not 1 <= args.runs <= 1000:
        parser.error("--variants must be 10..500000 and --runs 1..1000")
    redis = Redis.from_url(args.redis_url)
    if redis.dbsize():
        print(f"refusing to run: {args.redis_url} is not empty", file=sys.stderr)
        return 2
    admin_url = make_url(args.pg_admin_url)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = []
    try:
        results = {}
        for size in (args.baseline, args.variants):
            name = f"bench_variants_{uuid.uuid4().hex[:10]}"
            names.append(name)
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = admin_url.set(database=name).render_as_string(hide_password=False)
            results[size] = measure(
                production_env(url, args.redis_url), size, args.runs, args.bulk_runs
            )
            db._engines.pop(url).dispose() if url in db._engines else None
        small, large = results[args.baseline], results[args.variants]
        print(
            f"Variants page server time (Flask test client, median of {args.runs}; bulk edit "
            f"median of {args.bulk_runs}), PostgreSQL, {os.cpu_count()} CPUs"
        )
        print(f"{'':44}{args.baseline:>10,}{args.variants:>10,}{'ratio':>8}")
        slow = []
        for (name, at_small), at_large in zip(small.items(), large.values(), strict=True):
            label = name.split(" (")[0] if name.startswith("bulk") else name
            print(f"{label:44}{at_small:8.1f}ms{at_large:8.1f}ms{at_large / at_small:8.1f}")
            if not name.startswith("bulk") and at_large > args.target_ms:
                slow.append(name)
        bulk_name = next(n for n in large if n.startswith("bulk"))
        print(f"  large {bulk_name}; small {next(n for n in small if n.startswith('bulk'))}")
        print(
            "command: " + shlex.join([".venv/bin/python", "bench/variants_page.py", *sys.argv[1:]])
        )
        print(
            f"every page under {args.target_ms:.0f} ms"
            if not slow
            else "OVER TARGET: " + ", ".join(slow)
        )
        return 1 if slow else 0
    finally:
        with admin.connect() as conn:
            for name in names:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        redis.flushdb()
        redis.close()


if __name__ == "__main__":
    sys.exit(main())
