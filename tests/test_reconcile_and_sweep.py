"""The safety nets: reconciliation heals drift from missed webhooks; the sweeper re-queues
stored webhooks whose jobs vanished."""

from datetime import timedelta

from rq import Queue
from sqlalchemy import select

from plugin.extensions import db, redis_connection
from plugin.models import BadgeTransition, InboxStatus, SandboxVariant, WebhookEvent, utcnow
from plugin.services import sandbox_store
from tests.helpers import post_sandbox_webhook


def seed():
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    product, hooks = sandbox_store.create_product(
        db.session, shop, "Tee", [("S", "S", 4, "continue"), ("M", "M", 4, "deny")]
    )
    db.session.commit()
    sandbox_store.deliver(shop, hooks)
    return shop, product


def test_reconcile_command_heals_a_missed_webhook_and_records_what_it_fixed(app, client):
    shop, product = seed()
    small, medium = product.variants
    # The store sold out but its webhooks never arrived.
    small.inventory = 0
    medium.inventory = 0
    db.session.commit()
    badge_url = f"/storefront/v1/badges?shop=demo.sandbox.local&product={product.id}"
    assert {b["state"] for b in client.get(badge_url).json["variants"].values()} == {"in_stock"}

    result = app.test_cli_runner().invoke(args=["reconcile", "--shop", "demo.sandbox.local"])
    assert result.exit_code == 0, result.output
    assert "1 products, 2 variants, 2 badge(s) fixed" in result.output
    states = client.get(badge_url).json["variants"]
    assert states[str(small.id)]["state"] == "backorder"
    assert states[str(medium.id)]["state"] == "out_of_stock"
    fixed = db.session.scalars(
        select(BadgeTransition).where(BadgeTransition.cause == "reconcile")
    ).all()
    assert len(fixed) == 2
    db.session.expire_all()
    assert db.session.get(SandboxVariant, small.id).badge_state == "backorder"

    # Nothing drifted since: a second run fixes nothing.
    again = app.test_cli_runner().invoke(args=["reconcile"])
    assert "0 badge(s) fixed" in again.output


def test_sweeper_requeues_only_stale_unfinished_webhooks(queued_app, redis_url):
    from plugin.jobs import requeue_stuck_webhooks

    client = queued_app.test_client()
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    fresh = post_sandbox_webhook(client, "app/uninstalled", {}, event_id="fresh")
    stuck = post_sandbox_webhook(client, "app/uninstalled", {}, event_id="stuck")
    assert fresh.status_code == stuck.status_code == 200
    queue = Queue("webhooks", connection=redis_connection.client)
    queue.empty()  # as if Redis had lost its queued jobs

    stuck_row = db.session.get(WebhookEvent, stuck.json["id"])
    stuck_row.received_at = utcnow() - timedelta(minutes=10)
    done = WebhookEvent(
        platform="sandbox",
        shop_id=shop.id,
        shop_domain=shop.domain,
        topic="app/uninstalled",
        event_id="done",
        body=b"{}",
        status=InboxStatus.PROCESSED,
        received_at=utcnow() - timedelta(hours=1),
    )
    db.session.add(done)
    db.session.commit()

    assert requeue_stuck_webhooks() == "re-queued 1 webhook(s)"
    assert [job.args for job in queue.get_jobs()] == [(stuck_row.id,)]


def test_clock_process_loads_the_schedule_the_procfile_names(redis_url):
    """`rq cron plugin/schedule.py` (the Procfile's clock) registers every periodic job."""
    from pathlib import Path

    from redis import Redis
    from rq.cron import CronScheduler

    from plugin import schedule

    procfile = (Path(__file__).resolve().parent.parent / "Procfile").read_text()
    assert 'clock: rq cron --url "$REDIS_URL" plugin/schedule.py' in procfile
    scheduler = CronScheduler(connection=Redis.from_url(redis_url))
    scheduler.load_config_from_file("plugin/schedule.py")
    registered = {(job.func.__name__, job.queue_name, job.interval) for job in scheduler.get_jobs()}
    assert registered == {
        ("reconcile_all_shops", "sync", schedule.RECONCILE_EVERY_SECONDS),
        ("requeue_stuck_webhooks", "webhooks", schedule.SWEEP_EVERY_SECONDS),
        ("refresh_expiring_tokens", "sync", schedule.TOKEN_REFRESH_EVERY_SECONDS),
        ("purge_order_payloads", "sync", schedule.PURGE_EVERY_SECONDS),
        ("send_due_mails", "emails", schedule.MAIL_SWEEP_EVERY_SECONDS),
        ("send_due_restock_alerts", "emails", schedule.MAIL_SWEEP_EVERY_SECONDS),
        ("send_delay_notices", "emails", schedule.DELAY_NOTICES_EVERY_SECONDS),
    }
