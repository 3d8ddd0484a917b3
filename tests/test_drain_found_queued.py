"""A web process that found a shop's drain already queued does not ask Redis again for
ASKED_RECENTLY_S (`plugin.jobs.queue_received`), and the drain it relied on looks for pending
events once more after that long (`plugin.jobs.drain_shop_inbox`), so a delivery stored while
the drain ran is still processed. On real PostgreSQL and Redis, with a real RQ worker in burst
mode.
"""

from __future__ import annotations

import time
import uuid

from sqlalchemy import select

from plugin import jobs, queue
from plugin.extensions import db, redis_connection
from plugin.models import InboxStatus, WebhookEvent
from tests.helpers import post_sandbox_webhook
from tests.test_fairness import sandbox_shop_with_a_variant, work
from tests.waiting import wait_until

STOCK = "inventory_levels/update"


def deliver(client, shop, variant, available: int) -> str:
    event_id = f"found-queued-{uuid.uuid4()}"
    payload = {"variant_id": variant.id, "location_id": "default", "available": available}
    response = post_sandbox_webhook(
        client, STOCK, payload, shop_domain=shop.domain, event_id=event_id
    )
    assert response.status_code == 200, response.get_json()
    return event_id


class Asks:
    """Counts the drain requests that reach Redis (`request_drain`'s SET NX or its script)."""

    def __init__(self, monkeypatch):
        self.count = 0
        for name in ("ask_flag", "claim_flag"):
            real = getattr(jobs, name)
            monkeypatch.setattr(jobs, name, self._counted(real))

    def _counted(self, real):
        def counted(*args, **kwargs):
            self.count += 1
            return real(*args, **kwargs)

        return counted


def statuses() -> dict[str, InboxStatus]:
    db.session.expire_all()
    return dict(db.session.execute(select(WebhookEvent.event_id, WebhookEvent.status)).all())


def test_a_delivery_stored_while_the_relied_on_drain_ran_is_still_processed(
    queued_app, monkeypatch
):
    monkeypatch.setattr(jobs, "ASKED_RECENTLY_S", 2.0)
    shop, variant = sandbox_shop_with_a_variant("found-queued.example")
    client = queued_app.test_client()
    asks = Asks(monkeypatch)
    first = deliver(client, shop, variant, 3)  # queues the shop's drain
    second = deliver(client, shop, variant, 2)  # finds it queued, and relies on it
    assert asks.count == 2
    late: list[str] = []
    real_batch = jobs._drain_batch

    def batch_then_a_delivery(shop_id):
        result = real_batch(shop_id)
        if not late:  # the drain has taken what was pending: this one comes after
            late.append(deliver(client, shop, variant, 0))
        return result

    monkeypatch.setattr(jobs, "_drain_batch", batch_then_a_delivery)
    work()

    found = statuses()
    assert found[first] == found[second] == InboxStatus.PROCESSED
    assert found[late[0]] == InboxStatus.PROCESSED  # without the second look: left pending
    assert asks.count == 3  # the late delivery did not ask: the drain looked again instead


def test_a_web_process_asks_again_once_the_while_has_passed(queued_app, monkeypatch):
    monkeypatch.setattr(jobs, "ASKED_RECENTLY_S", 0.3)
    shop, variant = sandbox_shop_with_a_variant("asks-again.example")
    client = queued_app.test_client()
    asks = Asks(monkeypatch)
    deliver(client, shop, variant, 3)
    deliver(client, shop, variant, 2)  # found queued
    found_at = time.monotonic()
    deliver(client, shop, variant, 1)
    within = asks.count
    wait_until(lambda: time.monotonic() - found_at > 0.3, what="the while to pass")
    deliver(client, shop, variant, 0)
    assert (within, asks.count) == (2, 3)
    assert len(statuses()) == 4
    work()
    assert set(statuses().values()) == {InboxStatus.PROCESSED}


def test_only_a_flag_found_set_makes_its_drain_look_again(queued_app):
    """A lone delivery's drain (its flag claimed, never found set) stops as before."""
    client = redis_connection.client
    key = f"test:flag:{uuid.uuid4()}"
    assert queue.ask_flag(key, 60, "drain-a")  # claimed: nobody relies on it
    assert not queue.take_flag(key, "drain-a")
    assert not client.exists(key)
    assert queue.ask_flag(key, 60, "drain-b")
    assert not queue.ask_flag(key, 60, "drain-c")  # found set: relied on
    assert not queue.take_flag(key, "drain-c")  # not its owner: left alone
    assert client.get(key) == b"drain-b"
    assert queue.take_flag(key, "drain-b")
    assert not client.exists(key) and not client.exists(queue.seen_key(key))
