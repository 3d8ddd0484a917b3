"""Storefront badge API benchmark, driven by wrk: `GET /storefront/v1/badges?shop=&product=
&locale=` (what every BigCommerce product page asks) against a bare Flask endpoint answering a
constant body of the same shape (bench/bare_app.py), both under gunicorn with the same settings
(the repository's gunicorn.conf.py), in one run.

A fresh PostgreSQL database holds one shop with `--products` products of 3 variants (in stock,
on backorder with an ETA, out of stock). wrk cycles over one request per product: first
without validators (every answer a 200 with the body), then with the ETag each product's
answer carried (If-None-Match: each answer must be a 304), after a warm-up of both servers;
the three phases are interleaved over `--rounds` rounds and the median is reported.
Afterwards one badge is changed and committed, and the very next request must show it
(freshness of whatever the server caches).

    .venv/bin/python bench/badge_api.py --seconds 5 --rounds 3 --connections 16

Everything it creates (servers, database, the Redis db's keys) is removed at the end.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
from datetime import UTC, datetime, timedelta

import _harness as h

SHOP = "demo.sandbox.local"


def seed(app, products: int) -> list[str]:
    from domain.badges import BadgeKind
    from plugin.extensions import db
    from plugin.models import Product, Variant, VariantBadge
    from plugin.services import sandbox_store

    eta = datetime.now(UTC).date() + timedelta(days=14)
    kinds = [
        (BadgeKind.IN_STOCK, "In stock", None),
        (BadgeKind.BACKORDER, f"Backorder, ships by {eta:%a, %B %d, %Y}", eta),
        (BadgeKind.OUT_OF_STOCK, "Out of stock", None),
    ]
    with app.app_context():
        session = db.session
        shop = sandbox_store.ensure_shop(session, SHOP)
        session.flush()
        ids = []
        for p in range(products):
            product = Product(shop_id=shop.id, platform_id=str(5000 + p), title=f"Product {p}")
            session.add(product)
            session.flush()
            for v, (kind, label, when) in enumerate(kinds):
                variant = Variant(
                    shop_id=shop.id,
                    product_id=product.id,
                    platform_id=str(100000 + p * 10 + v),
                    title=f"V{v}",
                )
                session.add(variant)
                session.flush()
                session.add(
                    VariantBadge(
                        variant_id=variant.id, shop_id=shop.id, state=kind, label=label, eta=when
                    )
                )
            ids.append(product.platform_id)
        session.commit()
        session.close()
    return ids


def path_for(product_id: str) -> str:
    return f"/storefront/v1/badges?shop={SHOP}&product={product_id}&locale=en"


def get(port: int, path: str, headers: dict[str, str] | None = None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response.status, response.headers, body


def change_one_badge(app, product_id: str) -> tuple[str, str]:
    """Put the product's first variant on backorder with a new ETA, committed: returns the
    variant's platform id and the ETA the API must show from now on."""
    from sqlalchemy import select

    from domain.badges import BadgeKind
    from plugin.extensions import db
    from plugin.models import Product, Variant, VariantBadge

    eta = datetime.now(UTC).date() + timedelta(days=77)
    with app.app_context():
        badge, variant = db.session.execute(
            select(VariantBadge, Variant)
            .join(Variant, Variant.id == VariantBadge.variant_id)
            .join(Product, Product.id == Variant.product_id)
            .where(Product.platform_id == product_id)
            .order_by(Variant.id)
        ).first()
        badge.state, badge.eta, badge.version = BadgeKind.BACKORDER, eta, badge.version + 1
        db.session.commit()
        variant_id = variant.platform_id
        db.session.close()
    return variant_id, eta.isoformat()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5, help="per phase and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--products", type=int, default=200)
    parser.add_argument("--warmup", type=float, default=3, help="seconds of wrk before measuring")
    h.add_common_arguments(parser)
    args = parser.parse_args(argv)
    if not 1 <= args.seconds <= 120 or not 1 <= args.connections <= 512:
        parser.error("--seconds must be 1..120 and --connections 1..512")
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be 1..20")
    if not 1 <= args.products <= 10_000:
        parser.error("--products must be 1..10000")
    h.require_wrk()

    with h.stack("bench_badges", args.pg_admin_url, args.redis_url) as st, h.scratch_dir() as tmp:
        product_ids = seed(st.app, args.products)
        servers = [
            h.Server(
                "bare",
                "bench.bare_app:app",
                st.env,
                args.gunicorn_conf,
                args.web_workers,
                args.server_arg,
            ),
            h.Server(
                "app",
                "plugin:create_app()",
                st.env,
                args.gunicorn_conf,
                args.web_workers,
                args.server_arg,
            ),
        ]
        problems = []
        try:
            for server in servers:
                server.wait_ready()
            bare, app = servers
            plain = [h.raw_request("GET", path_for(p), {}) for p in product_ids]
            etags = {}
            for p in product_ids:
                status, headers, _ = get(app.port, path_for(p))
                if status != 200 or not headers.get("ETag"):
                    problems.append(f"product {p}: {status}, ETag {headers.get('ETag')}")
                etags[p] = headers.get("ETag", "")
            revalidate = [
                h.raw_request("GET", path_for(p), {"If-None-Match": etags[p]}) for p in product_ids
            ]
            bare_prefix = h.write_requests(tmp, "bare", plain, args.threads)
            plain_prefix = h.write_requests(tmp, "plain", plain, args.threads)
            reval_prefix = h.write_requests(tmp, "reval", revalidate, args.threads)
            wrk = dict(seconds=args.seconds, connections=args.connections, threads=args.threads)
            # Warm-up, not measured: every product asked of every worker (each process
            # keeps its own cache), on both servers alike.
            warm = dict(wrk, seconds=args.warmup)
            h.run_wrk("warm-up", bare.port, bare_prefix, wrap=True, **warm)
            h.run_wrk("warm-up", app.port, plain_prefix, wrap=True, **warm)
            # Interleaved rounds, so a burst of other work on the machine hits all three alike;
            # each line is the round with the median throughput.
            phases = [
                ("bare Flask JSON", bare.port, bare_prefix),
                ("app badges (200)", app.port, plain_prefix),
                ("app If-None-Match (304)", app.port, reval_prefix),
            ]
            rounds = [
                [h.run_wrk(name, port, prefix, wrap=True, **wrk) for name, port, prefix in phases]
                for _ in range(args.rounds)
            ]
            results = [h.median_result([r[i] for r in rounds]) for i in range(len(phases))]
            ratios_200 = sorted(r[1].rps / r[0].rps for r in rounds)
            ratios_304 = sorted(r[2].rps / r[0].rps for r in rounds)
            # Still 304 for an unchanged product, and a change is seen by the very next request.
            sample = product_ids[len(product_ids) // 2]
            status, _, _ = get(app.port, path_for(sample), {"If-None-Match": etags[sample]})
            if status != 304:
                problems.append(f"revalidation of an unchanged product gave {status}, not 304")
            variant_id, eta = change_one_badge(st.app, sample)
            stale = 0
            for _ in range(4):  # a request per web worker or more: none may answer the old one
                status, _, body = get(app.port, path_for(sample), {"If-None-Match": etags[sample]})
                shown = json.loads(body or b"{}").get("variants", {}).get(variant_id, {})
                if status != 200 or shown.get("eta") != eta or shown.get("state") != "backorder":
                    stale += 1
            if stale:
                problems.append(f"{stale} of 4 requests after a committed change were stale")
        finally:
            for server in servers:
                server.stop()

        print(
            f"storefront badge API, {args.products} products x 3 variants "
            f"(wrk -t{args.threads} -c{args.connections} -d{args.seconds:g}s), "
            f"gunicorn {servers[1].describe().split(' ', 3)[-1]}"
        )
        h.print_table(results)
        print(
            f"ratio throughput app/bare, 200s: {statistics.median(ratios_200):.2f} (median of "
            f"{args.rounds} rounds: {', '.join(f'{x:.2f}' for x in ratios_200)}; target >= 0.7)"
        )
        print(
            f"ratio throughput app/bare, 304s: {statistics.median(ratios_304):.2f} "
            f"({', '.join(f'{x:.2f}' for x in ratios_304)})"
        )
        print("after a committed badge change: " + ("; ".join(problems) or "next request fresh"))
        print("servers:", *(s.describe() for s in servers), sep="\n  ")
        print("reproduce:", h.reproduce("bench/badge_api.py", argv))
        errors = sum(r.error_count for round_ in rounds for r in round_)
        return 1 if problems or errors else 0


if __name__ == "__main__":
    sys.exit(main())
