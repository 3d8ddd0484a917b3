"""Support desk benchmark (issue 12): server time of the desk's search and of its KPI page with
100,000 backorder lines and 300,000 timeline steps in the shop, against the same requests with
1,000 lines.

A fresh PostgreSQL database (migrated with the app's migrations) gets the sandbox shop per size,
seeded in bulk SQL (`INSERT ... SELECT ... FROM generate_series`): one order of one line per
backorder line, spread over the last 180 days; a product per 5 variants and a variant per 10
lines; 30,000 customers' addresses at most (so an address has several orders); 60 % of the lines
fulfilled (2 to 21 days after the order, against a promise 10 days after it), 10 % cancelled, the
rest open or allocated; three steps per line (opened, allocated, then fulfilled or cancelled or
a reconciliation); notify-me sign-ups on a fiftieth of the variants. Then ANALYZE.

Measured, each the median of N runs after a warm-up:
- the search service itself (`plugin.services.desk_search.search`, helper S's module) for each
  kind of key: an order number, an exact address, an address prefix, a SKU, a product title word;
- the same searches as the desk page (`GET /sandbox/desk?q=...`, the Flask test client: routing,
  SQL, template);
- the KPI page (`GET /sandbox/desk/kpis?period=7|30|90`) and its service (`desk_kpis.compute`),
  and one CSV export.

Run from the repository root:

    .venv/bin/python bench/support_desk.py --lines 100000 --runs 15

Production-like settings (APP_ENV=production, Redis db 10, which must be empty). Everything it
creates is removed at the end. Exit status 1 if a page answers in more than --target-ms (300 by
default) at the large size.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from redis import Redis  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.webhook_ingest import PG_ADMIN_URL, REDIS_URL, production_env  # noqa: E402
from plugin import create_app  # noqa: E402
from plugin.commands import upgrade_database  # noqa: E402
from plugin.extensions import db  # noqa: E402
from plugin.services import desk_kpis, sandbox_store  # noqa: E402

STEPS_PER_LINE = 3
CUSTOMERS = 30_000

SEED_SQL = [
    # Products (one per 5 variants) and variants (one per 10 lines).
    """
    INSERT INTO products (shop_id, platform_id, title, created_at)
    SELECT :shop, 'p' || n, 'Tee ' || lpad(n::text, 5, '0') || ' organic cotton', now()
    FROM generate_series(0, :products - 1) AS n
    """,
    """
    INSERT INTO variants (shop_id, product_id, platform_id, sku, title, tracked, sells_past_zero,
                          inventory_total, created_at)
    SELECT :shop, p.id, 'v' || n, 'SKU-' || lpad(n::text, 6, '0'),
           (ARRAY['Red', 'Blue', 'Green'])[n % 3 + 1] || ' / '
             || (ARRAY['S', 'M', 'L', 'XL', 'XXL'])[n % 5 + 1],
           true, true, 0, now()
    FROM generate_series(0, :variants - 1) AS n
    JOIN products p ON p.shop_id = :shop AND p.platform_id = 'p' || (n / 5)
    """,
    # One order of one line per backorder line, over the last 180 days.
    """
    INSERT INTO orders (shop_id, platform_id, name, placed_at, customer_email, customer_name,
                        created_at, updated_at)
    SELECT :shop, 'o' || n, '#' || (1000 + n),
           now() - make_interval(mins => (n * 7919) % (180 * 24 * 60)),
           'customer' || (n % :customers) || '@example.com', 'Customer ' || (n % :customers),
           now(), now()
    FROM generate_series(0, :lines - 1) AS n
    """,
    """
    INSERT INTO order_lines (shop_id, order_id, platform_id, variant_id, ordered_quantity,
                             current_quantity, fulfilled_quantity, refunded_quantity)
    SELECT :shop, o.id, 'l' || n, v.id, 3, 3, 0, 0
    FROM generate_series(0, :lines - 1) AS n
    JOIN orders o ON o.shop_id = :shop AND o.platform_id = 'o' || n
    JOIN variants v ON v.shop_id = :shop AND v.platform_id = 'v' || (n % :variants)
    """,
    # 60 % fulfilled, 10 % cancelled, 20 % open, 10 % allocated; two units backordered each.
    """
    INSERT INTO backorder_lines (shop_id, variant_id, order_line_id, ordered_at, quantity,
        open_quantity, allocated_quantity, fulfilled_quantity, cancelled_quantity, status,
        opened_at, fulfilled_at, cancelled_at, promised_eta, created_at)
    SELECT :shop, ol.variant_id, ol.id, o.placed_at, 2,
           CASE WHEN k BETWEEN 7 AND 8 THEN 2 ELSE 0 END,
           CASE WHEN k = 9 THEN 2 ELSE 0 END,
           CASE WHEN k < 6 THEN 2 ELSE 0 END,
           CASE WHEN k = 6 THEN 2 ELSE 0 END,
           CASE WHEN k < 6 THEN 'fulfilled' WHEN k = 6 THEN 'cancelled'
                WHEN k = 9 THEN 'allocated' ELSE 'open' END,
           o.placed_at,
           CASE WHEN k < 6 THEN o.placed_at + make_interval(hours => 48 + (n * 31) % 456) END,
           CASE WHEN k = 6 THEN o.placed_at + interval '3 days' END,
           (o.placed_at + interval '10 days')::date,
           now()
    FROM (SELECT n, n % 10 AS k FROM generate_series(0, :lines - 1) AS n) AS s
    JOIN order_lines ol ON ol.shop_id = :shop AND ol.platform_id = 'l' || n
    JOIN orders o ON o.id = ol.order_id
    """,
    # Three timeline steps per line.
    """
    INSERT INTO backorder_steps (shop_id, line_id, at, kind, quantity, cause)
    SELECT :shop, b.id, b.opened_at + make_interval(days => step.n),
           CASE step.n WHEN 0 THEN 'opened' WHEN 1 THEN 'allocated'
                ELSE CASE b.status WHEN 'fulfilled' THEN 'fulfilled'
                                   WHEN 'cancelled' THEN 'cancelled' ELSE 'released' END END,
           2, CASE step.n WHEN 0 THEN 'orders/create' ELSE 'inventory_levels/update' END
    FROM backorder_lines b CROSS JOIN generate_series(0, :steps - 1) AS step(n)
    WHERE b.shop_id = :shop
    """,
    """
    INSERT INTO notify_subscriptions (shop_id, variant_id, email, locale, status, token,
        consent_text, consent_version, form, double_opt_in, created_at)
    SELECT :shop, v.id, 'signup' || v.id || '-' || s || '@example.com', 'en',
           CASE WHEN s % 3 = 0 THEN 'pending' ELSE 'active' END, md5(v.id || '-' || s),
           'ok', 'v1', 'sandbox', false, now()
    FROM variants v CROSS JOIN generate_series(1, 4) AS s
    WHERE v.shop_id = :shop AND v.id % 50 = 0
    """,
]


def seed(app, lines: int) -> dict[str, int]:
    with app.app_context():
        session = db.session
        shop = sandbox_store.ensure_shop(session)
        session.commit()
        variants = max(5, lines // 10)
        params = {
            "shop": shop.id,
            "lines": lines,
            "variants": variants,
            "products": -(-variants // 5),
            "customers": min(CUSTOMERS, max(1, lines // 3)),
            "steps": STEPS_PER_LINE,
        }
        for statement in SEED_SQL:
            session.execute(text(statement), params)
        session.commit()
        session.execute(text("ANALYZE"))
        session.commit()
        counts = {
            table: session.scalar(text(f"SELECT count(*) FROM {table}"))
            for table in ("backorder_lines", "backorder_steps", "orders", "variants")
        }
        return counts


def queries(lines: int) -> list[tuple[str, str]]:
    """Search keys that match at both sizes: each kind of key the box takes."""
    middle = lines // 2
    return [
        ("order number", f"#{1000 + middle}"),
        ("email, exact", f"customer{middle % min(CUSTOMERS, max(1, lines // 3))}@example.com"),
        ("email, prefix", "customer12"),
        ("SKU", f"SKU-{(middle // 10):06d}"),
        ("product title", "organic"),
    ]


def median_ms(call, runs: int) -> float:
    call()  # warm: templates, plans
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def page(client, url: str):
    def call():
        response = client.get(url)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")

    return call


def measure(env: dict, lines: int, runs: int) -> tuple[dict[str, float], dict[str, int]]:
    from urllib.parse import quote

    from plugin.services import desk_search

    app = create_app(env)
    with app.app_context():
        upgrade_database()
    counts = seed(app, lines)
    client = app.test_client()
    results: dict[str, float] = {}
    with app.app_context():
        shop = sandbox_store.ensure_shop(db.session)
        for name, query in queries(lines):

            def service(query=query):
                found = desk_search.search(db.session, shop, query)
                db.session.rollback()
                return found

            results[f"search service: {name}"] = median_ms(service, runs)
        for name, query in queries(lines):
            url = f"/sandbox/desk?q={quote(query)}"
            results[f"search page: {name}"] = median_ms(page(client, url), runs)
        for days in desk_kpis.PRESETS:
            period = desk_kpis.parse_period({"period": str(days)}, shop.timezone)

            def kpis(period=period):
                desk_kpis.compute(db.session, shop, period)
                db.session.rollback()

            results[f"KPI service: {days} days"] = median_ms(kpis, runs)
        for days in desk_kpis.PRESETS:
            url = f"/sandbox/desk/kpis?period={days}"
            results[f"KPI page: {days} days"] = median_ms(page(client, url), runs)
        results["KPI CSV: daily, 90 days"] = median_ms(
            page(client, "/sandbox/desk/kpis/daily.csv?period=90"), runs
        )
    return results, counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--target-ms", type=float, default=300.0)
    parser.add_argument("--pg-admin-url", default=PG_ADMIN_URL)
    parser.add_argument("--redis-url", default=REDIS_URL)
    args = parser.parse_args(argv)
    if not 100 <= args.lines <= 1_000_000 or not 1 <= args.runs <= 1000:
        parser.error("--lines must be 100..1000000 and --runs 1..1000")
    redis = Redis.from_url(args.redis_url)
    if redis.dbsize():
        print(f"refusing to run: {args.redis_url} is not empty", file=sys.stderr)
        return 2
    admin_url = make_url(args.pg_admin_url)
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = []
    try:
        results, counts = {}, {}
        for size in (args.baseline, args.lines):
            name = f"bench_desk_{uuid.uuid4().hex[:10]}"
            names.append(name)
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
            url = admin_url.set(database=name).render_as_string(hide_password=False)
            results[size], counts[size] = measure(
                production_env(url, args.redis_url), size, args.runs
            )
            db._engines.pop(url).dispose() if url in db._engines else None
        small, large = results[args.baseline], results[args.lines]
        print(
            f"Support desk server time (median of {args.runs}), PostgreSQL, {os.cpu_count()} CPUs"
        )
        for size in (args.baseline, args.lines):
            print(f"  {size:,} lines: " + ", ".join(f"{v:,} {k}" for k, v in counts[size].items()))
        print(f"{'':34}{args.baseline:>10,}{args.lines:>10,}{'ratio':>8}")
        slow = []
        for (name, at_small), at_large in zip(small.items(), large.values(), strict=True):
            print(f"{name:34}{at_small:8.1f}ms{at_large:8.1f}ms{at_large / at_small:8.1f}")
            if at_large > args.target_ms:
                slow.append(name)
        command = [".venv/bin/python", "bench/support_desk.py", *sys.argv[1:]]
        print("command: " + shlex.join(command))
        print(
            f"everything under {args.target_ms:.0f} ms"
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
