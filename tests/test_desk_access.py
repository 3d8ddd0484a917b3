"""Only the shop's own staff reach the support desk, in every shell, and a BigCommerce user removed
from the store loses it at once (issue 12, must-have 5)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from plugin.extensions import db
from plugin.services.shops import mark_uninstalled
from tests import factories
from tests.bc_callback_helpers import FakeStore, load_jwt
from tests.shopify_install_helpers import session_token

STORE = "z4zn3wo"
OTHER_STORE = "b7kq2m1"
OWNER = 7654321
STAFF = 9876543
SHOP = "cool-shop.myshopify.com"
OTHER_SHOP = "other-shop.myshopify.com"
DESK_PAGES = ("", "/kpis")


@pytest.fixture
def bc():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeStore(STORE).install(rsps)
        yield rsps


def open_desk(client, user_id: int) -> str:
    """The token a BigCommerce user gets at `load`, as the browser follows the redirect."""
    response = client.get(
        "/bigcommerce/load", query_string={"signed_payload_jwt": load_jwt(STORE, user_id=user_id)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return parse_qs(urlsplit(response.headers["Location"]).query)["token"][0]


@pytest.mark.parametrize("page", DESK_PAGES)
def test_a_bigcommerce_user_of_the_store_opens_the_desk_in_the_control_panel(app, client, bc, page):
    factories.bigcommerce_store(STORE, owner=OWNER, users=(OWNER,))
    token = open_desk(client, OWNER)
    response = client.get(f"/bigcommerce/app/{STORE}/desk{page}?token={token}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'aria-label="Support desk"' in html
    # The control panel's own links lead here, and the desk's links keep the app token.
    assert f"/bigcommerce/app/{STORE}/desk?token={token}" in html
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("page", DESK_PAGES)
def test_bigcommerce_refuses_a_bad_token_or_another_stores_desk(app, client, bc, page):
    factories.bigcommerce_store(STORE, owner=OWNER, users=(OWNER,))
    factories.bigcommerce_store(OTHER_STORE, owner=1, users=(1,))
    token = open_desk(client, OWNER)
    forged = client.get(f"/bigcommerce/app/{STORE}/desk{page}?token=not-a-token")
    assert forged.status_code == 401
    elsewhere = client.get(f"/bigcommerce/app/{OTHER_STORE}/desk{page}?token={token}")
    assert elsewhere.status_code == 403
    assert "another store" in elsewhere.get_data(as_text=True)


def test_a_removed_bigcommerce_user_loses_the_desk_at_once(app, client, bc):
    factories.bigcommerce_store(STORE, owner=OWNER, users=(OWNER, STAFF))
    token = open_desk(client, STAFF)
    page = f"/bigcommerce/app/{STORE}/desk?token={token}"
    assert client.get(page).status_code == 200

    removed = client.get(
        "/bigcommerce/remove_user",
        query_string={"signed_payload_jwt": load_jwt(STORE, user_id=STAFF)},
    )
    assert removed.status_code == 200
    # The same, still unexpired, app token no longer opens anything.
    for path in DESK_PAGES:
        refused = client.get(f"/bigcommerce/app/{STORE}/desk{path}?token={token}")
        assert refused.status_code == 403


@pytest.mark.parametrize("page", DESK_PAGES)
def test_shopify_staff_open_the_desk_with_a_session_token(app, client, page):
    factories.shopify_shop(SHOP)
    response = client.get(f"/shopify/app/desk{page}?shop={SHOP}&id_token={session_token(SHOP)}")
    assert response.status_code == 200
    assert response.headers["Content-Security-Policy"] == (
        f"frame-ancestors https://{SHOP} https://admin.shopify.com;"
    )
    html = response.get_data(as_text=True)
    # The desk is one of the app's pages in the admin's sidebar.
    assert '<s-link href="/shopify/app/desk">Support desk</s-link>' in html


@pytest.mark.parametrize("page", DESK_PAGES)
def test_shopify_refuses_forged_foreign_or_uninstalled(app, client, page):
    factories.shopify_shop(SHOP)
    factories.shopify_shop(OTHER_SHOP)
    forged = client.get(
        f"/shopify/app/desk{page}?shop={SHOP}&id_token={session_token(SHOP, secret='nope')}"
    )
    assert forged.status_code == 401
    foreign = client.get(
        f"/shopify/app/desk{page}?shop={SHOP}&id_token={session_token(OTHER_SHOP)}"
    )
    assert foreign.status_code == 401
    assert "another shop" in foreign.get_data(as_text=True)
    missing = client.get(f"/shopify/app/desk{page}?shop={SHOP}")
    assert missing.status_code == 401

    other = factories.shopify_shop("gone-shop.myshopify.com")
    mark_uninstalled(other)
    db.session.commit()
    gone = client.get(
        f"/shopify/app/desk{page}?id_token={session_token('gone-shop.myshopify.com')}"
    )
    assert gone.status_code == 401


def test_the_sandbox_store_has_the_desk_in_its_nav(app, client):
    html = client.get("/sandbox/").get_data(as_text=True)
    assert '<a href="/sandbox/desk">Support desk</a>' in html
    assert client.get("/sandbox/desk").status_code == 200
