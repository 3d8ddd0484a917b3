"""The sandbox end to end through real Redis and a real `rq worker` process (not inline jobs):
the same command the Procfile runs in production."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from rq import Queue
from rq.registry import ScheduledJobRegistry, StartedJobRegistry
from sqlalchemy import func, select

from plugin.extensions import db, redis_connection
from plugin.models import BadgeTransition, InboxStatus, SandboxVariant, WebhookEvent, utcnow
from plugin.queue import QUEUE_NAMES
from plugin.services import sandbox_store
from plugin.services.shop_time import shop_today
from tests import waiting
from tests.conftest import base_env
from tests.helpers import post_sandbox_webhook

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.services


def procfile_worker_command(redis_url: str) -> list[str]:
    """The Procfile's `worker` line, run with this virtualenv's rq."""
    line = next(
        row.split(":", 1)[1]
        for row in (ROOT / "Procfile").read_text().splitlines()
        if row.startswith("worker:")
    )
    argv = shlex.split(line.replace('"$REDIS_URL"', redis_url))
    assert argv[:2] == ["rq", "worker"]
    return [str(Path(sys.executable).with_name("rq")), *argv[1:]]


def test_procfile_worker_runs_every_queue_with_the_scheduler():
    argv = procfile_worker_command("redis://x")
    assert "--with-scheduler" in argv
    assert argv[-len(QUEUE_NAMES) :] == list(QUEUE_NAMES)


@pytest.fixture
def worker(queued_app, database_url, redis_url, tmp_path):
    env = {**os.environ, **base_env(DATABASE_URL=database_url, REDIS_URL=redis_url)}
    env["PYTHONPATH"] = str(ROOT)
    log = (tmp_path / "worker.log").open("w")
    process = subprocess.Popen(
        procfile_worker_command(redis_url),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield process
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()
    print((tmp_path / "worker.log").read_text()[-4000:])


def queues_idle() -> bool:
    connection = redis_connection.client
    for name in QUEUE_NAMES:
        queue = Queue(name, connection=connection)
        if (
            queue.count
            or len(StartedJobRegistry(queue=queue))
            or len(ScheduledJobRegistry(queue=queue))
        ):
            return False
    return True


def fresh_reads() -> None:
    db.session.expire_all()
    db.session.rollback()


def wait_until(condition, timeout=30.0, what="condition"):
    return waiting.wait_until(
        condition, timeout=timeout, what=what, interval=0.2, before_each=fresh_reads
    )


def wait_idle():
    # Idle at three checks in a row, so a job enqueued by the last one is seen too.
    streak = []

    def idle_for_a_while() -> bool:
        streak.append(queues_idle())
        return streak[-3:] == [True, True, True]

    wait_until(idle_for_a_while, what="idle queues")


def badge(client, vid):
    return client.get(f"/storefront/v1/badges?shop=demo.sandbox.local&variants={vid}").json[
        "variants"
    ][str(vid)]


def pushed_state(vid):
    return db.session.get(SandboxVariant, vid).badge_state


def act(shop, hooks):
    db.session.commit()
    assert sandbox_store.deliver(shop, hooks) == [200] * len(hooks)


def test_sandbox_flow_through_real_redis_and_worker(queued_app, worker):
    client = queued_app.test_client()
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    product, hooks = sandbox_store.create_product(
        db.session, shop, "Tee", [("S", "TEE-S", 2, "continue")]
    )
    act(shop, hooks)
    vid = product.variants[0].id

    # The webhook was stored and its shop's drain queued, by ids; only the worker applies it.
    jobs = Queue("webhooks", connection=redis_connection.client).get_jobs()
    assert all(
        job.func_name == "plugin.jobs.drain_shop_inbox" and job.args[0] == shop.id for job in jobs
    )
    assert all(isinstance(arg, int) for job in jobs for arg in job.args)
    wait_until(lambda: pushed_state(vid) == "in_stock", what="first badge pushed")
    assert badge(client, vid)["state"] == "in_stock"

    # Sold out, selling past zero allowed → backorder with the right ETA, pushed to the store.
    act(shop, sandbox_store.set_inventory(db.session, shop, vid, 0))
    wait_until(lambda: pushed_state(vid) == "backorder", what="backorder pushed")
    shown = badge(client, vid)
    assert shown["state"] == "backorder"
    assert shown["eta"] == (shop_today("UTC") + timedelta(days=14)).isoformat()

    # A backorder limit of 2, then 2 units ordered → limit reached → out of stock.
    settings_form = {
        "enabled": "on",
        "label_in_stock": "In stock",
        "label_backorder": "Backorder, ships by {eta}",
        "label_out_of_stock": "Out of stock",
        "color_in_stock": "#1a7f37",
        "color_backorder": "#9a6700",
        "color_out_of_stock": "#cf222e",
        "default_lead_days": "14",
        "timezone": "UTC",
    }
    assert client.post("/sandbox/settings", data=settings_form).status_code == 302
    # The per-variant limit is set on the Variants page.
    assert client.post("/sandbox/variants", data={"variant-1-limit": "2"}).status_code == 302
    _order, hooks = sandbox_store.place_order(db.session, shop, vid, 2, "shopper@example.com")
    act(shop, hooks)
    wait_until(lambda: pushed_state(vid) == "out_of_stock", what="limit reached")
    assert badge(client, vid)["state"] == "out_of_stock"
    with pytest.raises(sandbox_store.SandboxError):  # the store now refuses more backorders
        sandbox_store.place_order(db.session, shop, vid, 1, "late@example.com")
    db.session.rollback()

    # Restock → in stock.
    act(shop, sandbox_store.set_inventory(db.session, shop, vid, 5))
    wait_until(lambda: pushed_state(vid) == "in_stock", what="restock")
    wait_idle()
    transitions = db.session.scalar(select(func.count()).select_from(BadgeTransition))

    # The same webhook delivered twice changes nothing.
    last = db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id.desc())).first()
    replay = client.post(
        "/webhooks/sandbox",
        data=last.body,
        headers=_resign(queued_app, last),
    )
    assert replay.status_code == 200 and replay.json["duplicate"] is True
    wait_idle()
    assert db.session.scalar(select(func.count()).select_from(BadgeTransition)) == transitions

    # An older event arriving late changes nothing.
    late = post_sandbox_webhook(
        client,
        "inventory_levels/update",
        {"variant_id": vid, "location_id": "default", "available": 0},
        triggered_at=utcnow() - timedelta(hours=2),
    )
    assert late.status_code == 200
    late_id = late.json["id"]
    wait_until(
        lambda: db.session.get(WebhookEvent, late_id).status == InboxStatus.PROCESSED,
        what="late event processed",
    )
    wait_idle()
    assert badge(client, vid)["state"] == "in_stock"
    assert pushed_state(vid) == "in_stock"
    assert db.session.scalar(select(func.count()).select_from(BadgeTransition)) == transitions
    assert worker.poll() is None, "the worker process died"


def _resign(app, event: WebhookEvent) -> dict[str, str]:
    from webhooks import sandbox as sandbox_webhooks

    headers = {k: v for k, v in event.headers.items()}
    headers[sandbox_webhooks.H_HMAC] = sandbox_webhooks.sign(
        app.extensions["settings"].secret_key, event.body
    )
    return headers
