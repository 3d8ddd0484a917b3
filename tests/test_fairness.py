"""Per-shop fairness and fail-fast platform calls (issue 13, defect 7), on real Redis and
PostgreSQL with a real RQ worker in burst mode.

A shop's pending webhooks are processed by short per-shop drain jobs, queued round-robin, so a
shop with a big backlog cannot make another shop's event wait behind all of it. A platform that
is down or rate limits for long makes the job hand the wait to the queue: no sleep in the
worker, the event left pending, processed once the platform answers.
"""

from __future__ import annotations

import json
import re
import time
from datetime import timedelta

import pytest
import requests
import responses
from rq import Queue, SimpleWorker
from rq.registry import ScheduledJobRegistry
from sqlalchemy import func, select

from connectors.bigcommerce import client as bc_client
from connectors.bigcommerce import connector as bc_connector
from plugin import jobs
from plugin.extensions import db, redis_connection
from plugin.models import InboxStatus, SandboxVariant, WebhookEvent, utcnow
from plugin.services import sandbox_store
from tests import factories
from tests.bigcommerce_support import (
    API,
    RATE_HEADERS,
    documented_payload,
    inventory_item,
    page,
    signed,
    v3_product,
)
from tests.helpers import post_sandbox_webhook


def work(queues=("webhooks",)) -> None:
    """A real RQ worker, in this process, until the queues are empty."""
    redis = redis_connection.client
    worker = SimpleWorker([Queue(name, connection=redis) for name in queues], connection=redis)
    worker.work(burst=True)


def sandbox_shop_with_a_variant(domain: str):
    shop = sandbox_store.ensure_shop(db.session, domain)
    product, _hooks = sandbox_store.create_product(
        db.session, shop, "Tee", [("S", "S", 1, "continue")]
    )
    db.session.commit()
    return shop, product.variants[0]


def stock_events(shop, variant: SandboxVariant, count: int) -> None:
    """`count` stock changes of the variant, stored in the shop's inbox as ingest stores them."""
    store_stock_events(shop, [(variant.id, n % 7) for n in range(count)])


def store_stock_events(shop, changes: list[tuple[int, int]], name: str = "") -> None:
    """One stored stock webhook per (sandbox variant id, available), a millisecond apart."""
    start = utcnow()
    db.session.add_all(
        WebhookEvent(
            platform="sandbox",
            shop_id=shop.id,
            shop_domain=shop.domain,
            topic="inventory_levels/update",
            event_id=f"{shop.domain}-{name}{n}",
            triggered_at=start + timedelta(milliseconds=n),
            received_at=start,
            body=json.dumps(
                {"variant_id": variant_id, "location_id": "default", "available": available}
            ).encode(),
        )
        for n, (variant_id, available) in enumerate(changes)
    )
    db.session.commit()


def test_one_shops_backlog_does_not_make_another_shops_event_wait_behind_it(queued_app):
    client = queued_app.test_client()
    big, big_variant = sandbox_shop_with_a_variant("big.sandbox.local")
    small, small_variant = sandbox_shop_with_a_variant("small.sandbox.local")

    stock_events(big, big_variant, 500)
    assert jobs.request_drain(big.id)  # as ingest asks after storing them
    assert not jobs.request_drain(big.id)  # one drain queued per shop, however many events
    answer = post_sandbox_webhook(
        client,
        "inventory_levels/update",
        {"variant_id": small_variant.id, "location_id": "default", "available": 3},
        shop_domain=small.domain,
        event_id="small-1",
    )
    assert answer.status_code == 200
    queued = Queue("webhooks", connection=redis_connection.client).get_jobs()
    assert [(job.func_name, job.args) for job in queued] == [
        ("plugin.jobs.drain_shop_inbox", (big.id, 0)),
        ("plugin.jobs.drain_shop_inbox", (small.id, 0)),
    ]

    work()

    db.session.expire_all()
    events = db.session.scalars(select(WebhookEvent)).all()
    assert {e.status for e in events} == {InboxStatus.PROCESSED}
    assert len(events) == 501
    small_event = next(e for e in events if e.shop_id == small.id)
    before = [
        e for e in events if e.shop_id == big.id and e.processed_at < small_event.processed_at
    ]
    # The small shop's event waited for at most a batch of the big shop's, not for all 500.
    assert len(before) <= jobs.DRAIN_BATCH
    # Each shop's events were taken oldest first.
    big_events = sorted((e for e in events if e.shop_id == big.id), key=lambda e: e.id)
    assert big_events == sorted(big_events, key=lambda e: e.processed_at)
    assert all(e.attempts == 1 for e in events)
    assert db.session.get(SandboxVariant, small_variant.id) is not None


def test_a_backlog_is_drained_on_two_lanes_so_two_workers_share_it(queued_app):
    big, variant = sandbox_shop_with_a_variant("big.sandbox.local")
    stock_events(big, variant, jobs.DRAIN_BATCH + 5)
    jobs.request_drain(big.id)
    queue = Queue("webhooks", connection=redis_connection.client)
    (job,) = queue.get_jobs()
    queue.remove(job)  # taken by a worker
    SimpleWorker([queue], connection=redis_connection.client).execute_job(job, queue)
    # One batch done, more left: a drain on each lane, at the back of the queue.
    assert sorted(j.args for j in queue.get_jobs()) == [(big.id, 0), (big.id, 1)]
    work()
    db.session.expire_all()
    pending = db.session.scalar(
        select(func.count()).where(WebhookEvent.status != InboxStatus.PROCESSED)
    )
    assert pending == 0


def test_a_single_event_is_processed_and_a_duplicate_counted_once(queued_app):
    client = queued_app.test_client()
    shop, variant = sandbox_shop_with_a_variant(sandbox_store.DEMO_SHOP)
    payload = {"variant_id": variant.id, "location_id": "default", "available": 0}
    for _ in range(2):
        answer = post_sandbox_webhook(client, "inventory_levels/update", payload, event_id="once")
        assert answer.status_code == 200
    assert answer.json["duplicate"] is True
    work()
    db.session.expire_all()
    event = db.session.scalars(select(WebhookEvent)).one()
    assert (event.status, event.deliveries, event.attempts) == (InboxStatus.PROCESSED, 2, 1)


def test_a_failing_event_is_retried_on_its_own_and_the_drain_goes_on(queued_app):
    shop, variant = sandbox_shop_with_a_variant(sandbox_store.DEMO_SHOP)
    stock_events(shop, variant, 3)
    broken = db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).first()
    broken.body = b'{"variant_id": "not a number", "available": "x"}'
    db.session.commit()
    jobs.request_drain(shop.id)
    work()
    db.session.expire_all()
    statuses = [e.status for e in db.session.scalars(select(WebhookEvent).order_by("id"))]
    assert statuses[1:] == [InboxStatus.PROCESSED, InboxStatus.PROCESSED]
    assert statuses[0] in (InboxStatus.FAILED, InboxStatus.DEAD_LETTER)


# -- a platform that is down or rate limits: fail fast, retry through the queue -------------------


@pytest.fixture
def sleeps(monkeypatch):
    """Every sleep the worker's code asks for (the BigCommerce client's waits, time.sleep)."""
    seen: list[float] = []
    real_sleep = time.sleep

    def recording_sleep(seconds: float) -> None:
        seen.append(seconds)
        real_sleep(min(seconds, 0.01))

    monkeypatch.setattr(time, "sleep", recording_sleep)
    real_wait = bc_client.BigCommerceClient._wait

    def recording_wait(self, seconds: float) -> None:
        seen.append(seconds)
        real_wait(self, 0)

    monkeypatch.setattr(bc_client.BigCommerceClient, "_wait", recording_wait)
    bc_connector._clients.clear()
    yield seen
    bc_connector._clients.clear()


def run_due_drains() -> int:
    """What RQ's scheduler does once their time has come: queue the drains scheduled for later.
    Also forgets the shop's "platform down until" marker, as its expiry would by then."""
    redis = redis_connection.client
    registry = ScheduledJobRegistry("webhooks", connection=redis)
    queue = Queue("webhooks", connection=redis)
    ids = registry.get_job_ids()
    for job_id in ids:
        registry.remove(job_id)
        queue.enqueue_job(queue.fetch_job(job_id))
    for key in redis.scan_iter("platform:down:*"):
        redis.delete(key)
    work()
    return len(ids)


def the_event():
    db.session.expire_all()
    return db.session.scalars(select(WebhookEvent)).one()


@responses.activate
def test_a_platform_outage_never_sleeps_in_the_worker_and_the_event_waits_for_it(
    queued_app, sleeps
):
    factories.bigcommerce_store()
    client = queued_app.test_client()
    body, headers = signed(documented_payload("store-sku-inventory-updated"), msg_id="msg_down")
    assert client.post("/webhooks/bigcommerce", data=body, headers=headers).status_code == 200
    api = re.compile(re.escape(API) + r"/.*")

    # 1. Unreachable: the drain stops at once, the event stays pending, a drain is scheduled.
    responses.get(api, body=requests.ConnectionError("connection refused"))
    work()
    event = the_event()
    assert (event.status, event.attempts) == (InboxStatus.PENDING, 0)
    assert len(responses.calls) == 1
    assert ScheduledJobRegistry("webhooks", connection=redis_connection.client).count == 1
    # Another of the shop's jobs in the meantime does not call the platform at all.
    shop_id = event.shop_id
    with pytest.raises(jobs.PlatformUnavailable):
        jobs.push_badges(shop_id)
    jobs.drain_shop_inbox(shop_id, 0)  # the scheduled drain stands for it: none added
    assert len(responses.calls) == 1
    assert ScheduledJobRegistry("webhooks", connection=redis_connection.client).count == 1

    # 2. A 503 that says when to come back: the drain is scheduled for then.
    responses.replace(responses.GET, api, status=503, headers={"Retry-After": "120"})
    assert run_due_drains() == 1
    assert the_event().status == InboxStatus.PENDING
    scheduled = ScheduledJobRegistry("webhooks", connection=redis_connection.client)
    (job_id,) = scheduled.get_job_ids()
    due = scheduled.get_scheduled_time(job_id)
    assert due - utcnow() > timedelta(seconds=100)

    # 3. Rate limited for 5 s (the store's quota, shared with other apps): not slept, handed on.
    responses.replace(
        responses.GET,
        api,
        status=429,
        headers={
            **RATE_HEADERS,
            "X-Rate-Limit-Requests-Left": "0",
            "X-Rate-Limit-Time-Reset-Ms": "5000",
        },
    )
    assert run_due_drains() == 1
    assert the_event().status == InboxStatus.PENDING

    # 4. The store answers again: the event is processed and the badge pushed.
    responses.remove(responses.GET, api)
    bc_connector._clients.clear()  # a new worker process: no quota remembered
    responses.get(
        f"{API}/v3/inventory/items",
        json=page([inventory_item(206, 509, {1: 0})]),
        headers=RATE_HEADERS,
    )
    responses.get(
        f"{API}/v3/catalog/products/206",
        json={"data": v3_product(206, [(509, "Small", 0)]), "meta": {}},
        headers=RATE_HEADERS,
    )
    assert run_due_drains() >= 1
    event = the_event()
    assert (event.status, event.attempts) == (InboxStatus.PROCESSED, 1)
    assert not event.last_error

    # Never a sleep over a second in the worker, whatever the platform said.
    assert all(seconds <= 1.0 for seconds in sleeps), sleeps


def test_without_redis_events_are_still_processed_inline(app):
    shop, variant = sandbox_shop_with_a_variant(sandbox_store.DEMO_SHOP)
    answer = post_sandbox_webhook(
        app.test_client(),
        "inventory_levels/update",
        {"variant_id": variant.id, "location_id": "default", "available": 0},
    )
    assert answer.status_code == 200
    db.session.expire_all()
    assert db.session.scalars(select(WebhookEvent)).one().status == InboxStatus.PROCESSED


def test_the_drain_flag_is_short_lived_so_a_lost_drain_is_asked_again(queued_app):
    shop, _variant = sandbox_shop_with_a_variant(sandbox_store.DEMO_SHOP)
    assert jobs.request_drain(shop.id)
    ttl = redis_connection.client.ttl(jobs.drain_flag(shop.id, 0))
    assert 0 < ttl <= jobs.DRAIN_FLAG_TTL_S


def test_if_asking_for_the_drain_fails_the_platform_is_told_to_retry_and_nothing_is_lost(
    queued_app, monkeypatch
):
    import redis

    client = queued_app.test_client()
    shop, variant = sandbox_shop_with_a_variant(sandbox_store.DEMO_SHOP)
    payload = {"variant_id": variant.id, "location_id": "default", "available": 0}

    def redis_down(*_args, **_kwargs):
        raise redis.exceptions.ConnectionError("Redis went away")

    with monkeypatch.context() as patch:
        patch.setattr(redis_connection.client, "execute_command", redis_down)
        refused = post_sandbox_webhook(client, "inventory_levels/update", payload, event_id="e1")
    assert refused.status_code == 503
    assert the_event().status == InboxStatus.PENDING  # stored before the 503

    again = post_sandbox_webhook(client, "inventory_levels/update", payload, event_id="e1")
    assert again.status_code == 200 and again.json["duplicate"] is True
    work()
    event = the_event()
    assert (event.status, event.deliveries) == (InboxStatus.PROCESSED, 2)


def test_webhooks_retry_asks_each_shop_for_a_drain_and_retries_failed_events_alone(queued_app):
    first, first_variant = sandbox_shop_with_a_variant("first.sandbox.local")
    second, second_variant = sandbox_shop_with_a_variant("second.sandbox.local")
    stock_events(first, first_variant, 3)
    stock_events(second, second_variant, 2)
    failed = db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).first()
    failed.status = InboxStatus.FAILED
    db.session.commit()

    result = queued_app.test_cli_runner().invoke(args=["webhooks", "retry"])
    assert "queued 5 webhook(s)" in result.output
    queued = Queue("webhooks", connection=redis_connection.client).get_jobs()
    assert sorted((job.func_name, job.args) for job in queued) == [
        ("plugin.jobs.drain_shop_inbox", (first.id, 0)),
        ("plugin.jobs.drain_shop_inbox", (second.id, 0)),
        ("plugin.jobs.process_webhook", (failed.id,)),
    ]
    work()
    db.session.expire_all()
    statuses = {e.status for e in db.session.scalars(select(WebhookEvent))}
    assert statuses == {InboxStatus.PROCESSED}
