"""The safety nets: reconciliation heals drift from missed webhooks; the sweeper re-queues
stored webhooks whose jobs vanished."""

from datetime import timedelta

from rq import Queue
from rq.registry import ScheduledJobRegistry
from sqlalchemy import select

from plugin.extensions import db, redis_connection
from plugin.models import (
    BadgeTransition,
    InboxStatus,
    SandboxVariant,
    Variant,
    VariantBadge,
    WebhookEvent,
    utcnow,
)
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
    redis_connection.client.flushdb()  # as if Redis had lost its queued jobs (and flags)

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
    # A pending event is processed by its shop's drain (which takes the shop's pending events
    # oldest first), queued once however many of the shop's events were stuck.
    assert [(job.func_name, job.args) for job in queue.get_jobs()] == [
        ("plugin.jobs.drain_shop_inbox", (shop.id, 0))
    ]


def test_clock_process_loads_the_schedule_the_procfile_names(redis_url):
    """The Procfile's clock (plugin.clock on plugin/schedule.py) registers every periodic job."""
    from pathlib import Path

    from redis import Redis
    from rq.cron import CronScheduler

    from plugin import schedule

    procfile = (Path(__file__).resolve().parent.parent / "Procfile").read_text()
    assert 'clock: python -m plugin.clock --url "$REDIS_URL"' in procfile
    scheduler = CronScheduler(connection=Redis.from_url(redis_url))
    scheduler.load_config_from_file("plugin/schedule.py")
    registered = {(job.func.__name__, job.queue_name, job.interval) for job in scheduler.get_jobs()}
    assert registered == {
        ("reconcile_all_shops", "sync", schedule.RECONCILE_EVERY_SECONDS),
        ("requeue_stuck_webhooks", "webhooks", schedule.SWEEP_EVERY_SECONDS),
        ("push_unpushed_badges", "push", schedule.SWEEP_EVERY_SECONDS),
        ("refresh_expiring_tokens", "sync", schedule.TOKEN_REFRESH_EVERY_SECONDS),
        ("purge_order_payloads", "sync", schedule.PURGE_EVERY_SECONDS),
        ("send_due_mails", "emails", schedule.MAIL_SWEEP_EVERY_SECONDS),
        ("send_due_restock_alerts", "emails", schedule.MAIL_SWEEP_EVERY_SECONDS),
        ("send_delay_notices", "emails", schedule.DELAY_NOTICES_EVERY_SECONDS),
    }


def mirror(shop, sandbox_variant_id: int) -> Variant:
    return db.session.scalars(
        select(Variant).where(
            Variant.shop_id == shop.id, Variant.platform_id == str(sandbox_variant_id)
        )
    ).one()


def lose_last_push(variant: Variant, minutes_ago: int) -> VariantBadge:
    """As if the badge's push job had been lost with Redis: decided, never delivered."""
    badge = db.session.get(VariantBadge, variant.id)
    badge.pushed_version = badge.version - 1
    badge.decided_at = utcnow() - timedelta(minutes=minutes_ago)
    db.session.commit()
    return badge


def test_sweeper_queues_a_push_for_shops_whose_badge_push_was_lost(queued_app):
    """Defect 1: pushes exist only as delayed RQ jobs; a Redis restart lost one for good."""
    from plugin.jobs import process_webhook, push_unpushed_badges

    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    product, _hooks = sandbox_store.create_product(
        db.session, shop, "Tee", [("S", "S", 4, "continue"), ("M", "M", 4, "deny")]
    )
    db.session.commit()
    assert sandbox_store.deliver(shop, _hooks) == [200]
    for event_id in db.session.scalars(select(WebhookEvent.id)).all():
        process_webhook(event_id)  # what the worker does
    db.session.expire_all()
    wait_pushed = [mirror(shop, v.id) for v in product.variants]
    for variant in wait_pushed:
        badge = db.session.get(VariantBadge, variant.id)
        badge.pushed_version = badge.version  # as if every push so far went through
    db.session.commit()
    small = wait_pushed[0]
    push_queue = Queue("push", connection=redis_connection.client)
    push_queue.empty()
    assert push_unpushed_badges() == "queued a push for 0 shop(s)"

    lose_last_push(small, minutes_ago=0)  # fresh: its own job is still coming
    assert push_unpushed_badges() == "queued a push for 0 shop(s)"
    lose_last_push(small, minutes_ago=10)
    assert push_unpushed_badges() == "queued a push for 1 shop(s)"
    scheduled = ScheduledJobRegistry(queue=push_queue).get_job_ids() + push_queue.get_job_ids()
    assert scheduled == [f"push-shop-{shop.id}"]


def test_reconciliation_pushes_badges_still_pending_even_when_it_changed_none(app, client):
    """Defect 1: reconciliation pushed only the badges it changed; one whose push was lost
    earlier stayed wrong in the store."""
    shop, product = seed()
    small, _medium = product.variants
    db.session.expire_all()
    assert db.session.get(SandboxVariant, small.id).badge_state == "in_stock"
    # The store sold out and the app decided the backorder badge, but its push was lost.
    hooks = sandbox_store.set_inventory(db.session, shop, small.id, 0)
    db.session.commit()
    assert sandbox_store.deliver(shop, hooks) == [200]
    db.session.expire_all()
    lose_last_push(mirror(shop, small.id), minutes_ago=10)
    db.session.get(SandboxVariant, small.id).badge_state = "in_stock"  # what the store shows
    db.session.commit()

    result = app.test_cli_runner().invoke(args=["reconcile", "--shop", "demo.sandbox.local"])
    assert result.exit_code == 0, result.output
    assert "0 badge(s) fixed" in result.output
    db.session.expire_all()
    badge = db.session.get(VariantBadge, mirror(shop, small.id).id)
    assert badge.pushed_version == badge.version
    assert db.session.get(SandboxVariant, small.id).badge_state == "backorder"

    # The hourly job does the same as the command.
    from plugin.jobs import reconcile_shop

    lose_last_push(mirror(shop, small.id), minutes_ago=10)
    db.session.get(SandboxVariant, small.id).badge_state = "in_stock"
    db.session.commit()
    assert reconcile_shop(shop.id).startswith(f"shop {shop.id}: 0 badge(s) fixed")
    db.session.expire_all()
    badge = db.session.get(VariantBadge, mirror(shop, small.id).id)
    assert badge.pushed_version == badge.version
    assert db.session.get(SandboxVariant, small.id).badge_state == "backorder"


def test_sweeper_brings_forward_a_push_waiting_out_a_retry_once_the_platform_is_back(
    queued_app,
):
    """A push that failed while the platform was down waits for RQ's next retry slot (minutes);
    once nothing says the platform is down, the sweeper sends it now."""
    from plugin.jobs import process_webhook, push_badges, push_unpushed_badges

    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    product, hooks = sandbox_store.create_product(db.session, shop, "Tee", [("S", "S", 4, "deny")])
    db.session.commit()
    assert sandbox_store.deliver(shop, hooks) == [200]
    for event_id in db.session.scalars(select(WebhookEvent.id)).all():
        process_webhook(event_id)
    db.session.expire_all()
    push_queue = Queue("push", connection=redis_connection.client)
    for job_id in ScheduledJobRegistry(queue=push_queue).get_job_ids():
        ScheduledJobRegistry(queue=push_queue).remove(job_id, delete_job=True)
    push_queue.empty()
    lose_last_push(mirror(shop, product.variants[0].id), minutes_ago=10)
    # Its retry, ten minutes away.
    push_queue.enqueue_in(
        timedelta(minutes=10), push_badges, shop.id, job_id=f"push-shop-{shop.id}"
    )

    assert push_unpushed_badges() == "queued a push for 1 shop(s)"
    assert push_queue.get_job_ids() == [f"push-shop-{shop.id}"]
    assert ScheduledJobRegistry(queue=push_queue).get_job_ids() == []


def test_sweep_periods_come_from_the_settings():
    """The drills run the safety nets every few seconds; production keeps minutes."""
    import pytest

    from plugin.settings import Settings, SettingsError

    default = Settings.from_env({}).sweep
    assert (default.every_seconds, default.stale_pending_seconds) == (300, 300)
    assert (default.stale_failed_seconds, default.push_pending_seconds) == (1800, 120)
    quick = Settings.from_env({"SWEEP_EVERY_SECONDS": "2", "SWEEP_STALE_PENDING_SECONDS": "6"})
    assert (quick.sweep.every_seconds, quick.sweep.stale_pending_seconds) == (2, 6)
    with pytest.raises(SettingsError, match="SWEEP_PUSH_PENDING_SECONDS"):
        Settings.from_env({"SWEEP_PUSH_PENDING_SECONDS": "soon"})
