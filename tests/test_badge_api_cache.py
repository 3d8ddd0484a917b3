"""The storefront badge API's cache: a repeated question is answered from the process's cache,
yet a badge change committed is visible on the very next request (a TTL cache would fail
here), and revalidation gets a 304 until the answer changes."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import date

import pytest
from sqlalchemy import create_engine, event, select, text, update

from domain.badges import BadgeKind
from plugin.extensions import db
from plugin.models import BadgeGeneration, Shop, VariantBadge
from tests import factories

URL = "/storefront/v1/badges?shop={domain}&product={product}&locale=en"


def seed(domain: str = factories.SANDBOX_SHOP):
    shop = factories.shop(domain)
    product = factories.product(
        shop,
        "P1",
        variants=[
            {"platform_id": "V1", "badge": ("in_stock", "In stock", None)},
            {"platform_id": "V2", "badge": ("backorder", "Backorder", date(2030, 1, 15))},
        ],
    )
    return shop, product


@contextmanager
def statements(app):
    """The SQL statements the app sends meanwhile."""
    seen: list[str] = []

    def record(_conn, _cursor, statement, *_args):
        seen.append(statement)

    engine = app.extensions["db_engine"]
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def get_badge(variant_platform_id: str) -> VariantBadge:
    from plugin.models import Variant

    return db.session.scalars(
        select(VariantBadge)
        .join(Variant, Variant.id == VariantBadge.variant_id)
        .where(Variant.platform_id == variant_platform_id)
    ).one()


def test_a_repeated_question_is_answered_from_the_cache(app, client):
    seed()
    url = URL.format(domain=factories.SANDBOX_SHOP, product="P1")
    first = client.get(url)
    assert first.status_code == 200
    with statements(app) as seen:
        again = client.get(url)
    assert again.data == first.data
    # Only the shop's generation is read (on its own small pool): no badge, settings or shop
    # row through the app's engine.
    assert seen == []


def change_badge():
    found = get_badge("V1")
    found.state, found.eta, found.version = BadgeKind.BACKORDER, date(2031, 5, 6), 2
    db.session.commit()


def change_colour():
    shop = db.session.scalars(select(Shop)).one()
    shop.settings.color_in_stock = "#000001"
    shop.settings.color_backorder = "#000001"
    db.session.commit()


def change_label():
    shop = db.session.scalars(select(Shop)).one()
    shop.settings.label_backorder = "Later: {eta}"
    db.session.commit()


def change_locale():
    shop = db.session.scalars(select(Shop)).one()
    shop.locale = "fr"
    shop.published_locales = ["fr"]
    db.session.commit()


def delete_badge():
    db.session.delete(get_badge("V2"))
    db.session.commit()


def bulk_update():
    db.session.execute(update(VariantBadge).values(label="Bulk", state=BadgeKind.BACKORDER))
    db.session.commit()


@pytest.mark.parametrize(
    "change", [change_badge, change_colour, change_label, change_locale, delete_badge, bulk_update]
)
def test_a_committed_change_is_seen_by_the_very_next_request(client, change):
    seed()
    url = URL.format(domain=factories.SANDBOX_SHOP, product="P1")
    before = client.get(url)
    assert client.get(url).data == before.data  # cached now
    change()
    after = client.get(url)
    assert after.status_code == 200
    assert after.data != before.data
    db.session.close()
    # ... and it is what an uncached read of the database answers.
    client.application.extensions.pop("badge_answers")
    assert client.get(url).json == after.json


def generation_of(shop_id: int) -> int:
    found = db.session.get(BadgeGeneration, shop_id, populate_existing=True)
    return found.generation if found is not None else 0


def test_a_change_bumps_the_generation_in_its_own_transaction_only(app):
    shop, _ = seed()
    start = generation_of(shop.id)
    found = get_badge("V1")
    found.label = "x"
    db.session.flush()
    db.session.rollback()
    assert generation_of(shop.id) == start
    change_badge()
    assert generation_of(shop.id) == start + 1
    # Stock figures the answer is not made of leave the cache alone.
    variant = get_badge("V1").variant
    variant.inventory_total += 5
    db.session.commit()
    assert generation_of(shop.id) == start + 1


def test_another_shops_change_keeps_this_shops_answer_cached(app, client):
    seed()
    other = factories.shop("other.sandbox.local")
    factories.product(
        other, "Q1", variants=[{"platform_id": "W1", "badge": ("in_stock", "", None)}]
    )
    url = URL.format(domain=factories.SANDBOX_SHOP, product="P1")
    client.get(url)
    other_badge = get_badge("W1")
    other_badge.state = BadgeKind.OUT_OF_STOCK
    db.session.commit()
    with statements(app) as seen:
        client.get(url)
    assert seen == []


def test_revalidation_gets_304_then_200_with_the_new_body_after_a_change(client):
    seed()
    url = URL.format(domain=factories.SANDBOX_SHOP, product="P1")
    first = client.get(url)
    etag = first.headers["ETag"]
    same = client.get(url, headers={"If-None-Match": etag})
    assert same.status_code == 304
    assert same.data == b""
    assert same.headers["ETag"] == etag

    change_badge()
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.json["variants"]["V1"]["state"] == "backorder"
    assert changed.json["variants"]["V1"]["eta"] == "2031-05-06"
    assert changed.headers["ETag"] != etag
    again = client.get(url, headers={"If-None-Match": changed.headers["ETag"]})
    assert again.status_code == 304


def test_concurrent_requests_share_only_reads_that_started_after_they_arrived():
    import itertools
    import threading

    from plugin.services.badge_cache import CoalescedReads

    ticks = itertools.count()
    tick_lock = threading.Lock()
    reads = []

    def tick() -> int:
        with tick_lock:
            return next(ticks)

    def read(key):
        started = tick()
        reads.append(started)
        return started

    shared = CoalescedReads(read)
    stale = []

    def caller() -> None:
        for _ in range(300):
            arrived = tick()
            started = shared("shop")
            if started <= arrived:
                stale.append((arrived, started))

    threads = [threading.Thread(target=caller) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stale == []
    assert len(reads) <= 8 * 300


def test_a_request_arriving_during_a_read_waits_for_the_next_one():
    import threading

    from plugin.services.badge_cache import CoalescedReads

    gate, first_started = threading.Event(), threading.Event()
    results = {}
    calls = []

    def read(key):
        calls.append(key)
        if len(calls) == 1:
            first_started.set()
            assert gate.wait(30)
            return "before"
        return "after"

    shared = CoalescedReads(read)
    first = threading.Thread(target=lambda: results.setdefault("first", shared("k")))
    first.start()
    assert first_started.wait(30)
    second = threading.Thread(target=lambda: results.setdefault("second", shared("k")))
    second.start()
    gate.set()
    first.join(30)
    second.join(30)
    assert results == {"first": "before", "second": "after"}
    assert len(calls) == 2


def test_an_answer_after_postgresql_restarted_is_read_again_not_a_503(app, client):
    """PostgreSQL restarted since the pooled connections were last used (the fault drill saw a
    503 on a worker that had been idle): the read finds its connection dead and is made again
    on a fresh one. Nothing is cached yet, so the answer must come from the database."""
    shop, product = seed()
    db.session.commit()
    url = URL.format(domain=shop.domain, product=product.platform_id)
    assert client.get(url).status_code == 200
    app.extensions.pop("badge_answers")  # nothing cached: the answer is read again
    db.session.close()
    outside = create_engine(app.extensions["settings"].database_url)
    with outside.begin() as conn:  # every connection the app holds dies
        killed = conn.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        ).scalar()
    outside.dispose()
    assert killed
    response = client.get(url)
    assert response.status_code == 200
    assert response.get_json()["variants"]["V2"]["state"] == "backorder"
