"""Fault drill: the platform misbehaves. BigCommerce answers 429 (another app spent the shared
quota), 500 and 503, resets connections and once leaves a request unanswered past the client's
read timeout, while signed stock webhooks arrive. A stand-in for BigCommerce's V3 API
(fakes/bigcommerce.py) serves on a local port, which only a non-production app may be pointed at
(BIGCOMMERCE_API_BASE_OVERRIDE is ignored in production), so this one stack runs APP_ENV=test;
the processes are otherwise the Procfile's. Every webhook must be processed and every badge in
the fake store right at the end.

    .venv/bin/pytest -q -m drill tests/drills
"""

from __future__ import annotations

import base64
import http.client
import json
import random
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import pytest
from redis import Redis
from rq import Queue
from rq.registry import StartedJobRegistry
from sqlalchemy import create_engine, func, select, text

from fakes.bigcommerce import FakeBigCommerce, FakeStore
from tests.drills.harness import Stack, wait_for

pytestmark = [pytest.mark.drill, pytest.mark.usefixtures("drill_report")]

STORE_HASH = "drillbc1"
TOKEN = "drill-bc-token"
CLIENT_SECRET = "drill-bc-client-secret"
HOOK_SECRET = "drill-bc-hook-secret"


class FaultyStore(FakeStore):
    """The fake store, with a queue of faults served to the next requests, one each."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.faults: list[str] = []
        self.served_faults: Counter = Counter()
        # A hung request holds its connection until released or past the client's timeout.
        self.release_hung = threading.Event()


def faulty_handler(base):
    class Handler(base):
        def _serve(self, method: str) -> None:
            store: FaultyStore = self.store
            with store.lock:
                fault = store.faults.pop(0) if store.faults else None
            if fault is None:
                return super()._serve(method)
            store.served_faults[fault] += 1
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if fault == "reset":
                self.close_connection = True
                self.connection.close()
                return None
            if fault == "hang":  # past the client's read timeout (20 s)
                store.release_hung.wait(21)
                self.close_connection = True
                return None
            status = int(fault)
            return self._send(status, {"status": status, "title": "drill fault"}, {})

    return Handler


@pytest.fixture(scope="module")
def bc(pg, redis_server, drill_dir):
    from fakes import bigcommerce as fake_module

    # A short quota window, so a 429's reset is a second or two away.
    store = FaultyStore(STORE_HASH, TOKEN, quota=150, window_ms=2_000)
    variants = []
    for p in range(4):
        ids = [20_000 + p * 10 + i for i in range(4)]
        store.add_product(700 + p, f"Drill product {p}", ids)
        variants += [(700 + p, vid) for vid in ids]
    fake = FakeBigCommerce(store)
    fake.server.RequestHandlerClass = faulty_handler(fake.server.RequestHandlerClass)
    admin = create_engine(pg.url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text('CREATE DATABASE "drills_bc"'))
    admin.dispose()
    env = {
        "APP_ENV": "test",
        "APP_URL": "http://127.0.0.1",
        "SECRET_KEY": uuid.uuid4().hex,
        "DATABASE_URL": pg.url("drills_bc"),
        "REDIS_URL": redis_server.url.replace("/0?", "/1?"),
        "TOKEN_ENCRYPTION_KEYS": "x3Q0o1l3J0mW6s2vVn0k3Jm4H3t7Yw2Qe1Zr5Uu8Ii0=",
        "SHOPIFY_CLIENT_ID": "x",
        "SHOPIFY_CLIENT_SECRET": "x",
        "BIGCOMMERCE_CLIENT_ID": "drill-bc-client-id",
        "BIGCOMMERCE_CLIENT_SECRET": CLIENT_SECRET,
        "BIGCOMMERCE_API_BASE_OVERRIDE": fake.url,
        "SWEEP_EVERY_SECONDS": "2",
        "SWEEP_STALE_PENDING_SECONDS": "6",
        "SWEEP_STALE_FAILED_SECONDS": "6",
        "SWEEP_PUSH_PENDING_SECONDS": "4",
        "SWEEP_RECONCILE_EVERY_SECONDS": "3600",
    }
    from plugin import create_app
    from plugin.commands import upgrade_database
    from plugin.extensions import db
    from plugin.models import Platform
    from plugin.services import shops
    from plugin.services.tokens import vault

    app = create_app(env)
    base = drill_dir / "bc"
    base.mkdir()
    stack = Stack(base, env)
    with fake, app.app_context():
        upgrade_database()
        shop = shops.install_shop(
            db.session, vault(), Platform.BIGCOMMERCE, STORE_HASH, access_token=TOKEN
        )
        shops.set_webhook_secret(shop, HOOK_SECRET)
        shop.settings.auto_backorder = True
        db.session.commit()
        try:
            stack.start("web")
            stack.start("worker")
            stack.start("clock")
            yield app, store, variants, stack
        finally:
            stack.stop_all()
            del fake_module


def signed(payload: dict) -> tuple[bytes, dict[str, str]]:
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


def test_platform_429_5xx_and_timeouts(bc):
    from plugin.extensions import db
    from plugin.models import InboxStatus, WebhookEvent

    app, store, variants, stack = bc
    rng = random.Random(9)
    live = Redis.from_url(stack.env["REDIS_URL"])

    def clock_reconciled() -> bool:  # the clock's first reconciliation, at its start, is over
        sync = Queue("sync", connection=live)
        return (
            store.calls["GET /v3/hooks"] > 0
            and sync.count == 0
            and not StartedJobRegistry("sync", connection=live).get_job_ids()
        )

    wait_for(clock_reconciled, 60, "the clock's first reconciliation")
    # Each failure makes the shop's jobs wait longer (5, 10, 20, 40 s...): a few of each kind.
    faults = ["500", "503", "reset", "hang"]
    with store.lock:
        store.faults = list(faults)
        store.other_apps_burst = 3  # then three 429s: other apps spent the shared quota
    final: dict[int, int] = {}
    sent = acked = 0
    for _ in range(3):
        for product_id, variant_id in variants:
            level = rng.choice([0, 0, 1, 3, 7])
            store.set_level(variant_id, level)
            final[variant_id] = level
            body, headers = signed(stock_payload(product_id, variant_id))
            conn = http.client.HTTPConnection("127.0.0.1", stack.web_port, timeout=10)
            conn.request("POST", "/webhooks/bigcommerce", body=body, headers=headers)
            sent += 1
            acked += conn.getresponse().status == 200
            conn.close()
    assert acked == sent

    def expected(level: int) -> set[str]:
        return {"in_stock"} if level > 0 else {"backorder", "out_of_stock"}

    def all_right() -> bool:
        return all(
            (store.badge("variants", vid) or {}).get("state") in expected(level)
            for vid, level in final.items()
        )

    try:
        wait_for(all_right, 150, "every badge right in the store", interval=0.5)
    except AssertionError:
        with app.app_context():
            print("wrong:", wrong_badges(db, store, final, expected))
        raise

    def processed() -> bool:
        db.session.rollback()
        return not db.session.scalar(
            select(func.count())
            .select_from(WebhookEvent)
            .where(WebhookEvent.status.not_in([InboxStatus.PROCESSED, InboxStatus.IGNORED]))
        )

    with app.app_context():
        wait_for(processed, 60, "every webhook processed")
        stored = db.session.scalar(select(func.count()).select_from(WebhookEvent))
        # The app's mirror holds the store's final stock, and the store has the app's badge.
        from plugin.models import InventoryLevel, Variant, VariantBadge

        rows = db.session.execute(
            select(Variant.platform_id, InventoryLevel.available, VariantBadge)
            .join(InventoryLevel, InventoryLevel.variant_id == Variant.id)
            .join(VariantBadge, VariantBadge.variant_id == Variant.id)
        ).all()
        assert {int(pid): available for pid, available, _ in rows} == final
        for pid, _, badge in rows:
            assert badge.pushed_version == badge.version
            assert store.badge("variants", int(pid))["state"] == badge.state
    print(
        f"drill platform faults: sent {sent}, acknowledged {acked}, stored {stored}, processed "
        f"{stored}, lost 0; faults served {dict(store.served_faults)}, calls "
        f"{store.total_calls()}, 429s {store.rate_limited}"
    )
    assert stored == sent
    assert sum(store.served_faults.values()) == len(faults)
    assert store.rate_limited >= 3
    for name, process in stack.processes.items():
        assert process.poll() is None, f"{name} exited"


def wrong_badges(db, store, final, expected) -> list:
    from plugin.models import InventoryLevel, Variant, VariantBadge

    db.session.rollback()
    wrong = []
    for vid, level in final.items():
        shown = (store.badge("variants", vid) or {}).get("state")
        if shown in expected(level):
            continue
        variant = db.session.scalars(select(Variant).where(Variant.platform_id == str(vid))).first()
        badge = db.session.get(VariantBadge, variant.id) if variant else None
        levels = (
            db.session.execute(
                select(InventoryLevel.location_id, InventoryLevel.available).where(
                    InventoryLevel.variant_id == variant.id
                )
            ).all()
            if variant
            else []
        )
        wrong.append(
            (
                vid,
                level,
                shown,
                badge and (badge.state, badge.version, badge.pushed_version),
                levels,
            )
        )
    return wrong
