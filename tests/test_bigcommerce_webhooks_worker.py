"""End to end on the real services: the webhook endpoint stores and queues in Redis, a real
`rq worker --burst` subprocess processes it against a local fake of BigCommerce's V3 API (which
enforces a tiny rate limit), and the badge lands as a metafield in the fake store."""

from __future__ import annotations

from sqlalchemy import select

from fakes.bigcommerce import FakeBigCommerce, FakeStore
from plugin.extensions import db
from plugin.models import InboxStatus, WebhookEvent
from tests import factories
from tests.bigcommerce_support import STORE, TOKEN, documented_payload, drain, signed


def test_stock_webhooks_through_redis_and_a_real_worker_land_as_a_metafield(
    queued_app, database_url, redis_url
):
    # A small quota the worker must pace itself to, and other apps spending it on the first
    # request the worker sends, which is answered 429.
    store = FakeStore(STORE, TOKEN, quota=3, window_ms=400, other_apps_burst=1)
    store.add_product(206, "Tee", [509, 510])
    store.set_level(509, 0)
    store.set_level(510, 4)
    factories.bigcommerce_store()
    client = queued_app.test_client()
    payload = documented_payload("store-sku-inventory-updated")
    first, first_headers = signed(payload, msg_id="msg_worker_1")
    # The same stock change reported again under another id (stock events are not deduped on
    # the payload hash): the second job may reuse the first job's read, begun after both came.
    second, second_headers = signed(payload, msg_id="msg_worker_2")

    with FakeBigCommerce(store) as fake:
        ok = client.post("/webhooks/bigcommerce", data=first, headers=first_headers)
        assert ok.status_code == 200
        # A resend of the same message changes nothing.
        again = client.post("/webhooks/bigcommerce", data=first, headers=first_headers)
        assert again.json["duplicate"] is True
        client.post("/webhooks/bigcommerce", data=second, headers=second_headers)
        assert store.total_calls() == 0  # nothing is fetched before the 200

        drain(database_url, redis_url, fake.url)
        assert store.badge("variants", 509) == {
            "state": "out_of_stock",
            "label": "Out of stock",
            "eta": None,
            "eta_text": "",
        }
        assert store.rate_limited == 1  # refused once, waited Reset-Ms, sent again
        assert store.calls == {
            "GET /v3/catalog/products/206": 1,
            "GET /v3/inventory/items": 1,  # one read served both events
            "GET /v3/catalog/variants/metafields": 1,
            "POST /v3/catalog/variants/metafields": 1,
        }

        # A restock that arrives after that read needs a read of its own.
        store.set_level(509, 7)
        third, third_headers = signed(payload, msg_id="msg_worker_3")
        client.post("/webhooks/bigcommerce", data=third, headers=third_headers)
        drain(database_url, redis_url, fake.url)

    assert store.badge("variants", 509)["state"] == "in_stock"
    assert store.calls["GET /v3/inventory/items"] == 2
    assert store.calls["PUT /v3/catalog/variants/metafields"] == 1
    # The metafield ids learnt by the first push (another forked job) were not listed again.
    assert store.calls["GET /v3/catalog/variants/metafields"] == 1
    db.session.expire_all()
    events = db.session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
    assert [(e.status, e.deliveries) for e in events] == [
        (InboxStatus.PROCESSED, 2),
        (InboxStatus.PROCESSED, 1),
        (InboxStatus.PROCESSED, 1),
    ]
