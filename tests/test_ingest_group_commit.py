"""Group commit on the webhook endpoint (plugin/services/ingest.py), on real PostgreSQL and
Redis: deliveries that arrive while a batch is being written are stored together in the next
one, each is answered only once its row is committed and its shop's drain is queued, and one
delivery the database refuses, a dead connection or an unreachable Redis loses nothing.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from datetime import UTC, datetime

from sqlalchemy import create_engine, select, text

from plugin import create_app, jobs
from plugin.extensions import db, redis_connection
from plugin.models import InboxStatus, WebhookEvent
from plugin.services import inbox, ingest, sandbox_store
from tests.conftest import base_env
from tests.helpers import post_sandbox_webhook
from tests.waiting import wait_until
from webhooks.source import Delivery

STOCK = "inventory_levels/update"


def stock(n: int) -> dict:
    return {"variant_id": 1 + n % 5, "location_id": "default", "available": n % 7}


class HeldFirstBatch:
    """Wraps `inbox.record_many`: the first batch is held until `waiting` deliveries stand in
    line behind it, so the test knows what the next batch must hold. Records every batch."""

    def __init__(self, monkeypatch, writer: ingest.InboxWriter, waiting: int):
        self.batches: list[list[str]] = []
        self._writer = writer
        self._waiting = waiting
        self._real = inbox.record_many
        monkeypatch.setattr(inbox, "record_many", self)

    def __call__(self, connection, arrivals):
        if not self.batches:
            wait_until(
                lambda: len(self._writer._line) >= self._waiting,
                what=f"{self._waiting} deliveries waiting behind the first batch",
            )
        self.batches.append([a.delivery.event_id for a in arrivals])
        return self._real(connection, arrivals)


def committed(database_url: str, event_id: int) -> bool:
    """Read on a connection of its own: what any other process would see."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            found = conn.execute(
                text("SELECT count(*) FROM webhook_events WHERE id = :id"), {"id": event_id}
            ).scalar()
    finally:
        engine.dispose()
    return found == 1


def test_deliveries_arriving_together_are_stored_in_one_batch_each_once(
    queued_app, database_url, monkeypatch
):
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    writer = ingest._writer(db.engine)
    others = 7
    held = HeldFirstBatch(monkeypatch, writer, waiting=others)
    ids = [f"together-{uuid.uuid4()}" for _ in range(others)]
    # The second delivery of one event in the same batch: stored once, counted twice.
    sent = [f"first-{uuid.uuid4()}", *ids, ids[0]]
    answers: dict[int, tuple[int, dict, bool]] = {}

    def deliver(n: int, event_id: str) -> None:
        with queued_app.app_context():
            response = post_sandbox_webhook(
                queued_app.test_client(), STOCK, stock(n), event_id=event_id
            )
            data = response.get_json()
            # Answered only after its row was committed.
            answers[n] = (response.status_code, data, committed(database_url, data["id"]))

    first = threading.Thread(target=deliver, args=(0, sent[0]))
    first.start()
    wait_until(lambda: writer._writing, what="the first batch being written")
    threads = [threading.Thread(target=deliver, args=(n, e)) for n, e in enumerate(sent) if n]
    for thread in threads:
        thread.start()
    for thread in [first, *threads]:
        thread.join(timeout=60)

    assert [len(b) for b in held.batches] == [1, others + 1]  # the rest went in one statement
    assert sorted(held.batches[1]) == sorted(sent[1:])
    assert all(status == 200 and seen for status, _data, seen in answers.values())
    by_event: dict[str, set[int]] = {}
    for n, (_status, data, _seen) in answers.items():
        by_event.setdefault(sent[n], set()).add(data["id"])
    assert all(len(found) == 1 for found in by_event.values())  # one row per event
    twice = [answers[n][1] for n in (1, len(sent) - 1)]
    assert sorted(a["duplicate"] for a in twice) == [False, True]
    rows = db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
    assert len(rows) == len(set(sent))
    assert {r.event_id: r.deliveries for r in rows}[ids[0]] == 2
    assert all(r.shop_id == shop.id and r.status == InboxStatus.PENDING for r in rows)
    # One drain asked for the shop, and it has the batch's events to take.
    assert redis_connection.client.exists(jobs.drain_flag(shop.id, 0))


def arrival(event_id: str, shop_domain: str) -> inbox.Arrival:
    delivery = Delivery(shop_domain, STOCK, event_id, datetime.now(UTC))
    return inbox.Arrival("sandbox", delivery, b'{"available": 1}', {"X-Sandbox-Topic": STOCK})


def test_a_delivery_the_database_refuses_fails_alone(queued_app, monkeypatch):
    """PostgreSQL cannot store a NUL in text: the batch is written again one at a time, the
    others are stored and only that one fails, with an error that quotes no values."""
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    writer = ingest._writer(db.engine)
    held = HeldFirstBatch(monkeypatch, writer, waiting=3)
    good = [f"good-{uuid.uuid4()}" for _ in range(2)]
    bad = f"bad-\x00-{uuid.uuid4()}"
    results: dict[str, object] = {}

    domain = shop.domain

    def write(event_id: str) -> None:
        with queued_app.app_context():
            try:
                results[event_id] = writer.write(arrival(event_id, domain))
            except Exception as exc:
                results[event_id] = exc

    first = threading.Thread(target=write, args=(f"first-{uuid.uuid4()}",))
    first.start()
    wait_until(lambda: writer._writing, what="the first batch being written")
    threads = [threading.Thread(target=write, args=(e,)) for e in [good[0], bad, good[1]]]
    for thread in threads:
        thread.start()
    for thread in [first, *threads]:
        thread.join(timeout=60)

    assert len(held.batches[1]) == 3  # refused together, then one at a time
    assert isinstance(results[bad], ingest.StoreRefused)
    assert "\x00" not in str(results[bad]) and "values are not logged" in str(results[bad])
    assert all(isinstance(results[e], inbox.Recorded) and results[e].is_new for e in good)
    stored = set(db.session.scalars(select(WebhookEvent.event_id)).all())
    assert set(good) <= stored and bad not in stored


def test_a_connection_that_died_is_replaced_and_the_delivery_stored_once(queued_app):
    shop = sandbox_store.ensure_shop(db.session)
    db.session.commit()
    writer = ingest._writer(db.engine)
    writer.write(arrival(f"warm-{uuid.uuid4()}", shop.domain))  # its connection is pooled now
    [pid] = writer.pool.idle_backends()
    # PostgreSQL drops it (a restart, a failover): the next write finds it dead.
    killed = db.session.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    db.session.commit()
    assert killed
    event_id = f"after-{uuid.uuid4()}"
    recorded = writer.write(arrival(event_id, shop.domain))
    row = db.session.get(WebhookEvent, recorded.id)
    assert row.event_id == event_id and row.deliveries == 1


def test_stored_but_not_queued_is_a_503_and_the_retry_queues_it(database_url):
    """Redis unreachable after the commit: the platform is told to retry (503); the event is
    kept, and the retry (a duplicate by then) asks for the shop's drain once Redis is back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    down = create_app(base_env(DATABASE_URL=database_url, REDIS_URL=f"redis://127.0.0.1:{dead}/0"))
    event_id = f"redis-down-{uuid.uuid4()}"
    with down.app_context():
        sandbox_store.ensure_shop(db.session)
        db.session.commit()
        started = time.monotonic()
        response = post_sandbox_webhook(down.test_client(), STOCK, stock(1), event_id=event_id)
        assert response.status_code == 503
        assert "stored" in response.get_json()["error"]
        assert time.monotonic() - started < 10
        row = db.session.scalars(select(WebhookEvent).where(WebhookEvent.event_id == event_id))
        assert row.one().status == InboxStatus.PENDING


def test_the_retry_after_a_503_queues_the_stored_event(queued_app):
    event_id = f"retried-{uuid.uuid4()}"
    shop = sandbox_store.ensure_shop(db.session)
    db.session.add(
        WebhookEvent(
            platform="sandbox",
            shop_id=shop.id,
            shop_domain=shop.domain,
            topic=STOCK,
            event_id=event_id,
            received_at=datetime.now(UTC),
            body=b"{}",
        )
    )
    db.session.commit()  # as the 503'd delivery left it: stored, nothing queued
    assert not redis_connection.client.exists(jobs.drain_flag(shop.id, 0))
    response = post_sandbox_webhook(queued_app.test_client(), STOCK, stock(2), event_id=event_id)
    assert response.status_code == 200 and response.get_json()["duplicate"] is True
    assert redis_connection.client.exists(jobs.drain_flag(shop.id, 0))
