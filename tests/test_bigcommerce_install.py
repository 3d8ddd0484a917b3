"""Installing on BigCommerce: the code exchange, the encrypted token, hooks and script."""

from __future__ import annotations

import re
from html import unescape

import pytest
import responses
from sqlalchemy import text

from plugin.extensions import db, shared_cache
from plugin.models import InstallStatus, Platform, StoreRegistration
from plugin.services.bigcommerce_install import owner_of, users_of
from plugin.services.shops import find_shop, webhook_secret
from plugin.services.tokens import vault
from tests.bc_callback_helpers import (
    HOOK_SCOPES,
    REGISTRATION_PATHS,
    TOKEN_URL,
    FakeStore,
    assert_no_cookie,
    expected_hook_body,
    expected_script_body,
    expected_token_request,
    token_response,
)

STORE = "g5cd38"
SCOPE = "store_v2_products store_v2_orders store_v2_content"


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


@pytest.fixture(autouse=True)
def _fresh_cache(app):
    # Metafield ids the sync learnt live in the app's process cache (no Redis here).
    shared_cache.cache.clear()
    yield
    shared_cache.cache.clear()


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


def registrations(shop) -> dict[str, dict[str, str]]:
    """kind -> {name: remote id}, as the app remembers what it registered on the store."""
    found: dict[str, dict[str, str]] = {}
    for row in db.session.query(StoreRegistration).filter_by(shop_id=shop.id):
        found.setdefault(row.kind, {})[row.name] = row.remote_id
    return found


def test_install_exchanges_the_code_stores_the_token_encrypted_and_registers(app, client, bc):
    add_token_exchange(bc)
    store = FakeStore(STORE).install(bc)
    store.catalogue.add_product(206, "Tee", [509, 510])
    store.catalogue.set_level(510, 4)

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
    secret = webhook_secret(shop)
    assert len(secret) >= 40
    row = db.session.execute(text("SELECT * FROM shops WHERE domain = :d"), {"d": STORE}).one()
    assert not any("xxxxalphanumstringxxxx" in str(value) for value in row)
    assert not any(secret in str(value) for value in row)  # kept encrypted like the token
    users = [(u.user_id, u.email, u.is_owner) for u in users_of(db.session, shop)]
    assert users == [("24654", "merchant@example.com", True)]
    assert owner_of(db.session, shop).user_id == "24654"

    registration = [
        ("GET", "/v3/hooks", None),
        *[("POST", "/v3/hooks", expected_hook_body(scope, secret)) for scope in HOOK_SCOPES],
        ("GET", "/v3/content/scripts", None),
        ("POST", "/v3/content/scripts", expected_script_body(STORE)),
    ]
    assert store.registration_requests()[: len(registration)] == registration
    assert registrations(shop) == {
        "webhook": {hook["scope"]: str(hook["id"]) for hook in store.hooks},
        "script": {"Backorder Badges": store.scripts[0]["uuid"]},
    }
    assert set(registrations(shop)["webhook"]) == set(HOOK_SCOPES)
    # The page carries the app's own token for the iframe, not a cookie.
    assert re.search(rf'action="/bigcommerce/app/{STORE}\?token=[^"]+"', page)

    # The install started the catalogue sync: the store's variants are on the Variants page,
    # their badges decided and written to the store, and nothing was registered twice.
    listed = variants_page(client, page)
    assert "Tee · " in listed and "SKU-509" in listed and "SKU-510" in listed
    sync = [(method, path) for method, path, _ in store.requests[9:]]
    assert [r for r in sync if not r[1].startswith(REGISTRATION_PATHS)] == [
        ("GET", "/v2/store"),  # the store's time zone, language and country
        ("GET", "/v3/catalog/products"),
        ("GET", "/v3/inventory/items"),
        ("GET", "/v3/inventory/locations"),  # the names of the stock locations
        ("GET", "/v2/orders"),  # orders of the lookback period: none yet (204)
        ("GET", "/v3/catalog/variants/metafields"),
        ("POST", "/v3/catalog/variants/metafields"),
    ]
    assert store.catalogue.badge("variants", 509)["state"] == "out_of_stock"
    assert store.catalogue.badge("variants", 510)["state"] == "in_stock"
    assert len(store.hooks) == len(HOOK_SCOPES) and len(store.scripts) == 1


def test_reinstall_updates_the_token_and_creates_no_duplicate_hooks_or_script(app, client, bc):
    add_token_exchange(bc)
    store = FakeStore(STORE).install(bc)
    assert auth(client).status_code == 200
    secret = webhook_secret(find_shop(db.session, Platform.BIGCOMMERCE, STORE))
    store.requests.clear()

    add_token_exchange(bc, code="second-code", token="new-token-after-reinstall")
    assert auth(client, code="second-code").status_code == 200

    assert store.registration_requests()[:2] == [
        ("GET", "/v3/hooks", None),
        ("GET", "/v3/content/scripts", None),
    ]
    assert store.writes() == []
    assert len(store.hooks) == len(HOOK_SCOPES) and len(store.scripts) == 1
    db.session.expire_all()
    shop = find_shop(db.session, Platform.BIGCOMMERCE, STORE)
    assert vault().decrypt(shop.access_token_encrypted) == "new-token-after-reinstall"
    assert webhook_secret(shop) == secret


INCOMPLETE = "This install link is incomplete"
INVALID = "Invalid grant"
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


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        pytest.param(
            {
                "status": 400,
                "body": {"error": "invalid_grant", "error_description": "Invalid grant"},
            },
            f"BigCommerce refused the install ({INVALID})",
            id="refused-exchange",
        ),
        pytest.param(
            {"body": token_response("otherstore")},
            "granted access to a different store",
            id="token-for-another-store",
        ),
    ],
)
def test_an_exchange_that_grants_no_token_for_the_store_stores_nothing(
    app, client, bc, answer, message
):
    add_token_exchange(bc, **answer)
    response = auth(client)

    assert response.status_code == 400
    assert message in response.get_data(as_text=True)
    assert db.session.execute(text("SELECT count(*) FROM shops")).scalar() == 0
    assert [c.request.url for c in bc.calls] == [TOKEN_URL]


def variants_page(client, page: str) -> str:
    """The Variants page, opened from the nav link (with the app token) of `page`."""
    link = re.search(rf'href="(/bigcommerce/app/{STORE}/variants\?token=[^"]+)"', page).group(1)
    return client.get(unescape(link)).get_data(as_text=True)


def test_a_failed_registration_keeps_the_install_and_says_so(app, client, bc):
    add_token_exchange(bc)
    store = FakeStore(STORE, fail_hooks_with=422).install(bc)
    store.catalogue.add_product(206, "Tee", [509])

    response = auth(client)

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "could not finish setting up this store" in page
    # The catalogue sync still ran: the store's variant is there, its badge written.
    assert "SKU-509" in variants_page(client, page)
    assert store.catalogue.badge("variants", 509)["state"] == "out_of_stock"
    shop = find_shop(db.session, Platform.BIGCOMMERCE, STORE)
    assert shop.status == InstallStatus.INSTALLED
    assert "422" in shop.registration_error
