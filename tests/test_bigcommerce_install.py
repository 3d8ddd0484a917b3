"""Installing on BigCommerce: the code exchange, the encrypted token, hooks and script."""

from __future__ import annotations

import re

import pytest
import responses
from sqlalchemy import text

from plugin.extensions import db
from plugin.models import InstallStatus, Platform
from plugin.services.shops import find_shop
from plugin.services.tokens import vault
from tests.bc_callback_helpers import (
    HOOK_SCOPES,
    TOKEN_URL,
    FakeStore,
    assert_no_cookie,
    expected_hook_body,
    expected_script_body,
    expected_token_request,
    token_response,
)

STORE = "g5cd38"
SCOPE = "store_v2_products store_v2_orders_read_only store_v2_content"


def auth(client, code="qr6h3thvbvag2ffq", store=STORE, scope=SCOPE):
    return client.get(
        "/bigcommerce/auth",
        query_string={
            "account_uuid": "12345678-90ab-cdef-1234-567890abcdef",
            "code": code,
            "context": f"stores/{store}",
            "scope": scope,
        },
    )


@pytest.fixture
def bc():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def add_token_exchange(
    rsps, code="qr6h3thvbvag2ffq", token="xxxxalphanumstringxxxx", status=200, body=None
):
    rsps.add(
        responses.POST,
        TOKEN_URL,
        json=body if body is not None else token_response(STORE, token),
        status=status,
        match=[responses.matchers.json_params_matcher(expected_token_request(STORE, code, SCOPE))],
    )


def test_install_exchanges_the_code_stores_the_token_encrypted_and_registers(app, client, bc):
    add_token_exchange(bc)
    store = FakeStore(STORE).install(bc)

    response = auth(client)

    assert response.status_code == 200
    assert_no_cookie(response)
    page = response.get_data(as_text=True)
    assert "Backorder Badges is installed." in page
    assert 'id="settings-form"' in page
    # The exchange was sent exactly as BigCommerce documents it, as JSON.
    exchange = bc.calls[0].request
    assert exchange.url == TOKEN_URL
    assert exchange.headers["Content-Type"] == "application/json"

    shop = find_shop(db.session, Platform.BIGCOMMERCE, STORE)
    assert shop.status == InstallStatus.INSTALLED
    assert shop.access_token_encrypted != "xxxxalphanumstringxxxx"
    assert vault().decrypt(shop.access_token_encrypted) == "xxxxalphanumstringxxxx"
    row = db.session.execute(text("SELECT * FROM shops WHERE domain = :d"), {"d": STORE}).one()
    assert not any("xxxxalphanumstringxxxx" in str(value) for value in row)
    assert shop.platform_data["users"] == {"24654": {"email": "merchant@example.com"}}
    assert shop.platform_data["owner_id"] == "24654"
    secret = shop.platform_data["webhook_secret"]
    assert len(secret) >= 40

    assert store.requests == [
        ("GET", "/v3/hooks", None),
        *[("POST", "/v3/hooks", expected_hook_body(scope, secret)) for scope in HOOK_SCOPES],
        ("GET", "/v3/content/scripts", None),
        ("POST", "/v3/content/scripts", expected_script_body(STORE)),
    ]
    assert set(shop.platform_data["hook_ids"]) == set(HOOK_SCOPES)
    assert shop.platform_data["script_uuid"] == store.scripts[0]["uuid"]
    # The page carries the app's own token for the iframe, not a cookie.
    assert re.search(rf'action="/bigcommerce/app/{STORE}\?token=[^"]+"', page)


def test_reinstall_updates_the_token_and_creates_no_duplicate_hooks_or_script(app, client, bc):
    add_token_exchange(bc)
    store = FakeStore(STORE).install(bc)
    assert auth(client).status_code == 200
    secret = find_shop(db.session, Platform.BIGCOMMERCE, STORE).platform_data["webhook_secret"]
    store.requests.clear()

    add_token_exchange(bc, code="second-code", token="new-token-after-reinstall")
    assert auth(client, code="second-code").status_code == 200

    assert store.requests == [("GET", "/v3/hooks", None), ("GET", "/v3/content/scripts", None)]
    assert len(store.hooks) == 6 and len(store.scripts) == 1
    db.session.expire_all()
    shop = find_shop(db.session, Platform.BIGCOMMERCE, STORE)
    assert vault().decrypt(shop.access_token_encrypted) == "new-token-after-reinstall"
    assert shop.platform_data["webhook_secret"] == secret


INCOMPLETE = "This install link is incomplete"
NOT_A_STORE = "does not name a BigCommerce store"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"scope": SCOPE, "context": f"stores/{STORE}"}, INCOMPLETE),
        ({"code": "abc", "context": f"stores/{STORE}"}, INCOMPLETE),
        ({"code": "abc", "scope": SCOPE}, INCOMPLETE),
        ({"code": "abc", "scope": SCOPE, "context": "stores/../../evil"}, NOT_A_STORE),
        ({"code": "abc", "scope": SCOPE, "context": STORE}, NOT_A_STORE),
    ],
)
def test_bad_install_links_are_refused_and_nothing_is_stored(app, client, bc, query, message):
    response = client.get("/bigcommerce/auth", query_string=query)

    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert len(bc.calls) == 0
    assert db.session.execute(text("SELECT count(*) FROM shops")).scalar() == 0


def test_a_refused_exchange_shows_why_and_stores_nothing(app, client, bc):
    add_token_exchange(
        bc, status=400, body={"error": "invalid_grant", "error_description": "Invalid grant"}
    )
    response = auth(client)

    assert response.status_code == 400
    assert "BigCommerce refused the install (Invalid grant)" in response.get_data(as_text=True)
    assert db.session.execute(text("SELECT count(*) FROM shops")).scalar() == 0
    assert [c.request.url for c in bc.calls] == [TOKEN_URL]


def test_a_token_for_another_store_is_not_accepted(app, client, bc):
    add_token_exchange(bc, body=token_response("otherstore"))
    response = auth(client)

    assert response.status_code == 400
    assert db.session.execute(text("SELECT count(*) FROM shops")).scalar() == 0


def test_a_failed_registration_keeps_the_install_and_says_so(app, client, bc):
    add_token_exchange(bc)
    FakeStore(STORE, fail_hooks_with=422).install(bc)

    response = auth(client)

    assert response.status_code == 200
    assert "could not finish setting up this store" in response.get_data(as_text=True)
    shop = find_shop(db.session, Platform.BIGCOMMERCE, STORE)
    assert shop.status == InstallStatus.INSTALLED
    assert "422" in shop.platform_data["registration_error"]
