"""Opening the app in BigCommerce's control panel: signed payloads, users, the app token, and
uninstall/remove_user as BigCommerce sends them."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from sqlalchemy import text

from plugin.extensions import db
from plugin.models import InstallStatus, Platform, StoreUser
from plugin.services import bigcommerce_session
from plugin.services.bigcommerce_install import user_belongs, users_of
from plugin.services.shops import find_shop, webhook_secret
from tests import factories
from tests.bc_callback_helpers import (
    HOOK_SCOPES,
    FakeStore,
    assert_no_cookie,
    expected_hook_body,
    legacy_payload,
    load_jwt,
)

STORE = "z4zn3wo"
OTHER = "b7kq2m1"
OWNER = 7654321
STAFF = 9876543


def installed(users=(OWNER,)):
    return factories.bigcommerce_store(
        STORE, token=f"token-{STORE}", webhook_secret=f"secret-{STORE}", owner=OWNER, users=users
    )


def reload_shop(store_hash=STORE):
    db.session.expire_all()
    return find_shop(db.session, Platform.BIGCOMMERCE, store_hash)


def users() -> dict[str, tuple[str, str | None]]:
    """Who may open the app on the store now: user id -> (email, locale)."""
    return {u.user_id: (u.email, u.locale) for u in users_of(db.session, reload_shop())}


def belongs(user_id) -> bool:
    return user_belongs(db.session, reload_shop(), str(user_id))


def store_facts() -> tuple:
    """Everything a callback may change about the store and its users."""
    shop = reload_shop()
    rows = db.session.query(StoreUser).filter_by(shop_id=shop.id).order_by(StoreUser.id)
    return (
        shop.status,
        shop.access_token_encrypted,
        shop.registered_at,
        shop.registration_error,
        [(u.user_id, u.email, u.locale, u.is_owner, u.admitted_at, u.removed_at) for u in rows],
    )


@pytest.fixture
def bc():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


@pytest.fixture
def store(bc):
    return FakeStore(STORE).install(bc)


def open_app(client, **kwargs):
    """`load` as the browser follows it: the redirect to the app page with the app token."""
    response = client.get(
        "/bigcommerce/load", query_string={"signed_payload_jwt": load_jwt(STORE, **kwargs)}
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    assert_no_cookie(response)
    location = response.headers["Location"]
    assert urlsplit(location).path == f"/bigcommerce/app/{STORE}"
    return location, parse_qs(urlsplit(location).query)["token"][0]


def test_load_opens_the_settings_page_with_an_app_token_and_no_cookie(app, client, store):
    installed()
    location, _token = open_app(client, user_id=OWNER)

    page = client.get(location)

    assert page.status_code == 200
    assert_no_cookie(page)
    assert 'id="settings-form"' in page.get_data(as_text=True)
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors" in page.headers["Content-Security-Policy"]


def test_a_new_user_of_the_store_is_added_on_load(app, client, store):
    installed()
    open_app(client, user_id=STAFF, email="staff@example.com")

    assert users() == {
        str(OWNER): (f"{OWNER}@example.com", None),
        str(STAFF): ("staff@example.com", "en-US"),
    }


def test_a_second_load_registers_nothing_twice_and_reactivates_a_dormant_hook(app, client, store):
    installed()
    open_app(client, user_id=OWNER)
    assert len(store.hooks) == len(HOOK_SCOPES) and len(store.scripts) == 1
    # BigCommerce deactivates hooks after 90 days without events.
    dormant = next(h for h in store.hooks if h["scope"] == "store/order/created")
    dormant["is_active"] = False
    store.requests.clear()

    open_app(client, user_id=OWNER)
    open_app(client, user_id=STAFF)

    assert store.requests == [
        ("GET", "/v3/hooks", None),
        (
            "PUT",
            f"/v3/hooks/{dormant['id']}",
            expected_hook_body("store/order/created", f"secret-{STORE}"),
        ),
        ("GET", "/v3/content/scripts", None),
        ("GET", "/v3/hooks", None),
        ("GET", "/v3/content/scripts", None),
    ]
    assert len(store.hooks) == len(HOOK_SCOPES) and len(store.scripts) == 1


@pytest.mark.parametrize(
    "forged",
    [
        {"secret": "not-the-client-secret"},
        {"issued_at": int(time.time()) - 2 * 86400},  # expired a day ago
        {"aud": "another-apps-client-id"},
        {"iss": "someone-else"},
        {"sub": "stores/"},
        {"sub": "users/z4zn3wo"},
    ],
    ids=["wrong-key", "expired", "wrong-aud", "wrong-iss", "empty-sub", "wrong-sub"],
)
def test_unverifiable_payloads_are_refused_and_change_nothing(app, client, store, forged):
    installed()
    before = store_facts()

    response = client.get(
        "/bigcommerce/load",
        query_string={"signed_payload_jwt": load_jwt(STORE, user_id=STAFF, **forged)},
    )

    assert response.status_code == 401
    assert "could not be verified" in response.get_data(as_text=True)
    assert store_facts() == before
    assert store.requests == []


def test_a_load_without_any_payload_is_refused(app, client, store):
    installed()
    assert client.get("/bigcommerce/load").status_code == 401


def test_a_load_for_a_store_that_never_installed_is_refused(app, client, store):
    response = client.get("/bigcommerce/load", query_string={"signed_payload_jwt": load_jwt(STORE)})
    assert response.status_code == 404
    assert "not installed" in response.get_data(as_text=True)
    assert db.session.execute(text("SELECT count(*) FROM shops")).scalar() == 0


def test_the_legacy_signed_payload_is_accepted(app, client, store):
    installed()
    good = legacy_payload(STORE, user_id=STAFF)
    response = client.get("/bigcommerce/load", query_string={"signed_payload": good})
    assert response.status_code == 302
    assert belongs(STAFF)


def tampered_legacy_payload() -> str:
    """The store's genuine signature on a JSON naming another store."""
    encoded_json, _other_signature = legacy_payload(OTHER, user_id=1).split(".")
    _, good_signature = legacy_payload(STORE, user_id=1).split(".")
    return encoded_json + "." + good_signature


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(tampered_legacy_payload, id="tampered"),
        pytest.param(lambda: legacy_payload(STORE, user_id=1, secret="guessed"), id="forged"),
        pytest.param(
            lambda: legacy_payload(STORE, user_id=1, timestamp=time.time() - 3 * 86400),
            id="stale",
        ),
    ],
)
def test_legacy_payloads_that_do_not_verify_are_refused(app, client, store, payload):
    installed()
    before = store_facts()

    response = client.get("/bigcommerce/load", query_string={"signed_payload": payload()})

    assert response.status_code == 401
    assert not belongs(1)
    assert store_facts() == before
    assert find_shop(db.session, Platform.BIGCOMMERCE, OTHER) is None


def test_uninstall_marks_the_store_uninstalled_and_deletes_the_token(app, client, store):
    installed(users=(OWNER, STAFF))
    forged = client.get(
        "/bigcommerce/uninstall",
        query_string={"signed_payload_jwt": load_jwt(STORE, secret="forged")},
    )
    assert forged.status_code == 401
    assert reload_shop().status == InstallStatus.INSTALLED

    response = client.get(
        "/bigcommerce/uninstall", query_string={"signed_payload_jwt": load_jwt(STORE)}
    )

    assert response.status_code == 200
    assert response.json["status"] == "ok"
    shop = reload_shop()
    assert shop.status == InstallStatus.UNINSTALLED
    assert shop.access_token_encrypted is None
    assert users() == {}
    assert webhook_secret(shop) == f"secret-{STORE}"  # kept for a reinstall
    # Nobody can open it any more, not even the owner with a fresh payload.
    again = client.get("/bigcommerce/load", query_string={"signed_payload_jwt": load_jwt(STORE)})
    assert again.status_code == 404


def test_remove_user_revokes_the_user_and_their_open_page(app, client, store):
    installed(users=(OWNER,))
    earlier_payload = load_jwt(STORE, user_id=STAFF, issued_at=int(time.time()) - 60)
    location, _ = open_app(client, user_id=STAFF)
    assert client.get(location).status_code == 200

    response = client.get(
        "/bigcommerce/remove_user",
        query_string={"signed_payload_jwt": load_jwt(STORE, user_id=STAFF)},
    )

    assert response.status_code == 200
    assert not belongs(STAFF)
    assert client.get(location).status_code == 403
    # A payload signed before the removal cannot bring them back.
    replay = client.get("/bigcommerce/load", query_string={"signed_payload_jwt": earlier_payload})
    assert replay.status_code == 403
    assert not belongs(STAFF)
    # When the owner grants access again, BigCommerce signs a new payload and they are back.
    open_app(client, user_id=STAFF, issued_at=int(time.time()) + 2)
    assert belongs(STAFF)
    # The owner is unaffected.
    owner_page, _ = open_app(client, user_id=OWNER)
    assert client.get(owner_page).status_code == 200


def test_remove_user_with_a_forged_payload_changes_nothing(app, client, store):
    installed(users=(OWNER, STAFF))
    response = client.get(
        "/bigcommerce/remove_user",
        query_string={"signed_payload_jwt": load_jwt(STORE, user_id=STAFF, secret="x")},
    )
    assert response.status_code == 401
    assert belongs(STAFF)


def test_app_tokens_expire(app):
    token = bigcommerce_session.issue("k", STORE, "1")
    assert bigcommerce_session.read("k", token).store_hash == STORE
    with pytest.raises(bigcommerce_session.AppTokenRefused) as refused:
        bigcommerce_session.read("k", token, max_age=-1)
    assert refused.value.expired
    with pytest.raises(bigcommerce_session.AppTokenRefused):
        bigcommerce_session.read("another-key", token)
