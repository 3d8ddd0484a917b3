"""The hooks registered at install are the ones the webhook endpoint accepts, end to end.

BigCommerce sends back, on every delivery, the custom headers the app registered with the hook.
Here the install registers through the fake V3 API, and each delivery carries exactly the headers
the fake store holds for the hook, signed with the `standardwebhooks` library as BigCommerce
signs. Jobs go to real Redis (queued, not run), so this checks only that deliveries are stored.
"""

from __future__ import annotations

import pytest
import responses
from sqlalchemy import select

from plugin.extensions import db
from plugin.models import WebhookEvent
from tests.bc_callback_helpers import HOOK_SCOPES, TOKEN_URL, FakeStore, load_jwt, token_response
from tests.bigcommerce_support import documented_payload, signed

STORE = "g5cd38"


@pytest.fixture
def bc():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def install(client, bc, code):
    bc.add(responses.POST, TOKEN_URL, json=token_response(STORE, token=f"token-{code}"))
    response = client.get(
        "/bigcommerce/auth",
        query_string={"code": code, "scope": "store_v2_products", "context": f"stores/{STORE}"},
    )
    assert response.status_code == 200


def deliver(client, store: FakeStore, scope: str, *, with_hook_headers: bool = True):
    payload = documented_payload("store-sku-inventory-updated", store=STORE)
    payload["scope"] = scope
    body, headers = signed(payload, secret_header=None)
    if with_hook_headers:
        hook = next(h for h in store.hooks if h["scope"] == scope and h["is_active"])
        headers.update(hook["headers"])
    return client.post("/webhooks/bigcommerce", data=body, headers=headers)


def stored_events():
    db.session.expire_all()
    return db.session.scalars(select(WebhookEvent)).all()


def test_deliveries_to_the_registered_hooks_are_accepted_and_others_refused(queued_app, bc):
    client = queued_app.test_client()
    store = FakeStore(STORE).install(bc)
    install(client, bc, "first")

    accepted = deliver(client, store, "store/sku/inventory/updated")
    missing_header = deliver(client, store, "store/sku/inventory/updated", with_hook_headers=False)

    assert accepted.status_code == 200
    assert missing_header.status_code == 401
    events = stored_events()
    assert [(e.topic, e.shop_domain) for e in events] == [("store/sku/inventory/updated", STORE)]


def test_after_uninstall_and_reinstall_the_new_hooks_work(queued_app, bc):
    client = queued_app.test_client()
    store = FakeStore(STORE).install(bc)
    install(client, bc, "first")
    uninstall = client.get(
        "/bigcommerce/uninstall", query_string={"signed_payload_jwt": load_jwt(STORE)}
    )
    assert uninstall.status_code == 200
    store.hooks.clear()  # BigCommerce deletes an app's hooks when it is uninstalled
    store.scripts.clear()  # and its auto_uninstall scripts

    install(client, bc, "second")

    assert len(store.hooks) == len(HOOK_SCOPES) and len(store.scripts) == 1
    assert deliver(client, store, "store/product/inventory/updated").status_code == 200
    assert len(stored_events()) == 1
