"""Restock storm, BigCommerce edition: 1,000 signed stock webhooks over 100 variants, through the
real endpoint, Redis and `rq worker` processes, against a local fake of the V3 API that enforces
BigCommerce's shared quota (150 requests per 30 s window) and answers 429 beyond it.

Measured in one run, on the same store and workers:
  install: a reconciliation mirrors the catalogue and pushes every badge (as after an install);
  calm   (the baseline): one webhook per variant (100);
  storm:  ten webhooks per variant (1,000), the store's stock changing before each one.
Workers run as the Procfile runs them (`plugin.worker.AppWorker`, jobs in the worker process,
so the client's view of the quota carries over between jobs, and the Procfile's queue order).
For each phase: platform calls, 429s received, and the time from the first webhook
posted until every variant's badge metafield in the fake store is right (the "right" badge
follows the store's final stock). A lost update would show as a badge that never becomes
right (the run then fails).

The quota window can be scaled down (--scale) so the run takes seconds, not minutes: the quota
stays 150 requests, the window becomes 30 s x scale. The printed figures say which scale made them.

    .venv/bin/python bench/restock_storm_bigcommerce.py --scale 0.1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fakes.bigcommerce import FakeBigCommerce, FakeStore  # noqa: E402
from plugin import create_app  # noqa: E402
from plugin.commands import upgrade_database  # noqa: E402
from plugin.extensions import db  # noqa: E402
from plugin.models import InboxStatus, Platform, WebhookEvent  # noqa: E402
from plugin.queue import QUEUE_NAMES  # noqa: E402
from plugin.services import shops  # noqa: E402
from plugin.services.tokens import vault  # noqa: E402

STORE_HASH = "stormbc1"
TOKEN = "bench-token"
CLIENT_SECRET = "bench-client-secret"
HOOK_SECRET = "bench-hook-secret"
FERNET_KEY = "x3Q0o1l3J0mW6s2vVn0k3Jm4H3t7Yw2Qe1Zr5Uu8Ii0="
PRODUCTS = 10
DEADLINE_S = 900


def app_env(database_url: str, redis_url: str) -> dict[str, str]:
    return {
        "APP_ENV": "test",
        "APP_URL": "https://app.bench",
        "SECRET_KEY": "bench-secret-key",
        "TOKEN_ENCRYPTION_KEYS": FERNET_KEY,
        "SHOPIFY_CLIENT_ID": "x",
        "SHOPIFY_CLIENT_SECRET": "x",
        "BIGCOMMERCE_CLIENT_ID": "bench-client-id",
        "BIGCOMMERCE_CLIENT_SECRET": CLIENT_SECRET,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
    }


def signed_delivery(payload: dict) -> tuple[bytes, dict[str, str]]:
    import base64
    from datetime import UTC, datetime

    from standardwebhooks import Webhook

    body = json.dumps(payload).encode()
    msg_id = f"msg_{uuid.uuid4().hex}"
    now = datetime.now(UTC)
    signature = Webhook(base64.b64encode(CLIENT_SECRET.encode()).decode()).sign(
        msg_id, now, body.decode()
    )
    return body, {
        "Content-Type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "X-Backorder-Secret": HOOK_SECRET,
    }


def stock_payload(product_id: int, variant_id: int) -> dict:
    return {
        "scope": "store/sku/inventory/updated",
        "store_id": "1025646",
        "data": {
            "type": "sku",
            "id": variant_id,
            "inventory": {
                "product_id": product_id,
                "method": "absolute",
                "value": 0,
                "variant_id": variant_id,
            },
        },
        "hash": uuid.uuid4().hex[:40],
        "created_at": int(time.time()),
        "producer": f"stores/{STORE_HASH}",
    }


def expected_state(level: int) -> str:
    # The bench store backorders automatically (auto_backorder), so zero stock is "backorder".
    return "in_stock" if level > 0 else "backorder"


def install_reconcile(shop_id: int, store, variants, rng) -> dict:
    """What an install does first: mirror the whole catalogue and push every badge."""
    from plugin.jobs import schedule_push
    from plugin.models import Shop
    from plugin.services.reconcile import reconcile_shop

    calls_before, limited_before = store.total_calls(), store.rate_limited
    final = {}
    for _, variant_id in variants:
        final[variant_id] = rng.choice([0, 0, 1, 2, 5, 12])
        store.set_level(variant_id, final[variant_id])
    started = time.monotonic()
    with db.unit_of_work() as session:
        reconcile_shop(session, session.get(Shop, shop_id))
    schedule_push(shop_id)
    return _wait_until_right("install (reconcile + push)", store, final, started, 0, 0.0) | {
        "calls": store.total_calls() - calls_before,
        "rate_limited": store.rate_limited - limited_before,
    }


def run_phase(name, client, store, variants, per_variant, rng) -> dict:
    calls_before, limited_before = store.total_calls(), store.rate_limited
    final: dict[int, int] = {}
    started = time.monotonic()
    order = [v for _ in range(per_variant) for v in variants]
    for product_id, variant_id in order:
        level = rng.choice([0, 0, 1, 2, 5, 12])
        store.set_level(variant_id, level)
        final[variant_id] = level
        body, headers = signed_delivery(stock_payload(product_id, variant_id))
        response = client.post("/webhooks/bigcommerce", data=body, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"webhook refused: {response.status_code} {response.data[:200]!r}")
    posted_s = time.monotonic() - started
    return _wait_until_right(name, store, final, started, len(order), posted_s) | {
        "calls": store.total_calls() - calls_before,
        "rate_limited": store.rate_limited - limited_before,
    }


def _wait_until_right(name, store, final, started, webhooks, posted_s) -> dict:
    while True:
        wrong = [
            vid
            for vid, level in final.items()
            if (store.badge("variants", vid) or {}).get("state") != expected_state(level)
        ]
        if not wrong:
            break
        if time.monotonic() - started > DEADLINE_S:
            raise SystemExit(f"{name}: {len(wrong)} badge(s) never became right (lost update?)")
        time.sleep(0.05)
    return {
        "phase": name,
        "webhooks": webhooks,
        "posted_s": posted_s,
        "right_after_s": time.monotonic() - started,
    }


def start_workers(count: int, env: dict[str, str], redis_url: str) -> list[subprocess.Popen]:
    rq = str(Path(sys.executable).with_name("rq"))
    return [
        subprocess.Popen(
            [
                rq,
                "worker",
                "--with-scheduler",
                "-w",
                "plugin.worker.AppWorker",
                "-u",
                redis_url,
                *QUEUE_NAMES,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for _ in range(count)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=0.1, help="quota window = 30 s x scale")
    parser.add_argument("--quota", type=int, default=150)
    parser.add_argument("--variants", type=int, default=100)
    parser.add_argument("--per-variant", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()
    window_ms = int(30_000 * args.scale)

    from redis import Redis

    Redis.from_url(args.redis_url).flushdb()
    admin_url = make_url(args.pg)
    name = f"bb_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    database_url = admin_url.set(database=name).render_as_string(hide_password=False)

    store = FakeStore(STORE_HASH, TOKEN, quota=args.quota, window_ms=window_ms)
    per_product = max(1, args.variants // PRODUCTS)
    variants: list[tuple[int, int]] = []
    for p in range(PRODUCTS):
        ids = [10_000 + p * 100 + i for i in range(per_product)]
        store.add_product(500 + p, f"Storm product {p}", ids)
        variants += [(500 + p, vid) for vid in ids]

    workers: list[subprocess.Popen] = []
    try:
        with FakeBigCommerce(store) as fake:
            env = {
                **app_env(database_url, args.redis_url),
                "BIGCOMMERCE_API_BASE_OVERRIDE": fake.url,
            }
            app = create_app(env)
            with app.app_context():
                upgrade_database()
                shop = shops.install_shop(
                    db.session, vault(), Platform.BIGCOMMERCE, STORE_HASH, access_token=TOKEN
                )
                shops.set_webhook_secret(shop, HOOK_SECRET)
                shop.settings.auto_backorder = True
                db.session.commit()
                worker_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
                workers = start_workers(args.workers, worker_env, args.redis_url)
                client = app.test_client()
                rng = random.Random(args.seed)
                warm = install_reconcile(shop.id, store, variants, rng)
                calm = run_phase("calm (baseline)", client, store, variants, 1, rng)
                storm = run_phase("storm", client, store, variants, args.per_variant, rng)
                time.sleep(1.5)
                db.session.expire_all()
                failed = db.session.scalar(
                    select(func.count())
                    .select_from(WebhookEvent)
                    .where(WebhookEvent.status != InboxStatus.PROCESSED)
                )
        report(args, window_ms, [warm, calm, storm], failed)
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()
        for engine in db._engines.values():
            engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        Redis.from_url(args.redis_url).flushdb()


def report(args, window_ms: int, phases: list[dict], unprocessed: int) -> None:
    rate = args.quota / (window_ms / 1000)
    print(
        f"BigCommerce restock storm: {args.variants} variants, {args.workers} rq workers, "
        f"fake quota {args.quota} requests per {window_ms} ms "
        f"(scale {args.scale} of BigCommerce's 30 s window; {rate:.0f} req/s)"
    )
    print(f"{'phase':34} {'webhooks':>8} {'calls':>6} {'calls/wh':>8} {'429s':>5} "
          f"{'posted s':>8} {'right s':>8} {'quota-bound s':>13}")  # fmt: skip
    for ph in phases:
        bound = ph["calls"] / rate
        print(
            f"{ph['phase']:34} {ph['webhooks']:>8} {ph['calls']:>6} "
            f"{ph['calls'] / max(1, ph['webhooks']):>8.2f} {ph['rate_limited']:>5} "
            f"{ph['posted_s']:>8.2f} {ph['right_after_s']:>8.2f} {bound:>13.2f}"
        )
    calm, storm = phases[1], phases[2]
    print(
        f"storm / calm: webhooks x{storm['webhooks'] / calm['webhooks']:.1f}, "
        f"calls x{storm['calls'] / max(1, calm['calls']):.2f}, "
        f"time until every badge is right x{storm['right_after_s'] / calm['right_after_s']:.2f}"
    )
    print(
        "storm time / quota-bound time (1.00 = as fast as the quota allows): "
        f"{storm['right_after_s'] / (storm['calls'] / rate):.2f}"
    )
    print(f"inbox events not processed at the end: {unprocessed}; every badge right: yes")
    print(
        "reproduce: .venv/bin/python bench/restock_storm_bigcommerce.py "
        f"--scale {args.scale} --workers {args.workers} --seed {args.seed} "
        f"--variants {args.variants} --per-variant {args.per_variant}"
    )


if __name__ == "__main__":
    main()
