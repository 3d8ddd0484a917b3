"""The pages inside the control-panel iframe: only the app token opens them, only for its store."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import responses

from plugin.extensions import db
from plugin.models import BadgeKind, BadgeTransition, Platform, WebhookEvent
from plugin.services import bigcommerce_session, settings_form
from plugin.services.shops import find_shop
from tests import factories
from tests.bc_callback_helpers import HOOK_SCOPES, FakeStore, assert_no_cookie, load_jwt

STORE_A = "z4zn3wo"
STORE_B = "b7kq2m1"
OWNER_A = 7654321
OWNER_B = 1111111


def installed(store_hash, owner):
    return factories.bigcommerce_store(
        store_hash, token=f"token-{store_hash}", webhook_secret=f"secret-{store_hash}", owner=owner
    )


@pytest.fixture
def stores():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        FakeStore(STORE_A).install(rsps)
        FakeStore(STORE_B).install(rsps)
        installed(STORE_A, OWNER_A)
        installed(STORE_B, OWNER_B)
        yield


def app_token(client, store_hash, user_id):
    response = client.get(
        "/bigcommerce/load",
        query_string={
            "signed_payload_jwt": load_jwt(store_hash, user_id=user_id, owner_id=user_id)
        },
    )
    assert response.status_code == 302
    return parse_qs(urlsplit(response.headers["Location"]).query)["token"][0]


def settings_of(store_hash):
    db.session.expire_all()
    return find_shop(db.session, Platform.BIGCOMMERCE, store_hash).settings


def form_for(store_hash, **changes):
    db.session.expire_all()
    shop = find_shop(db.session, Platform.BIGCOMMERCE, store_hash)
    values = settings_form.form_values(shop)
    values.update(changes)
    return {k: v for k, v in values.items() if v != ""}


def test_settings_are_saved_through_the_embedded_page_with_the_app_token(app, client, stores):
    token = app_token(client, STORE_A, OWNER_A)
    form = form_for(STORE_A, label_backorder="Ships by {eta} — thanks for waiting")

    response = client.post(f"/bigcommerce/app/{STORE_A}?token={token}", data=form)

    assert response.status_code == 302
    assert_no_cookie(response)
    assert settings_of(STORE_A).label_backorder == "Ships by {eta} — thanks for waiting"
    assert settings_of(STORE_B).label_backorder == "Backorder, ships by {eta}"
    page = client.get(response.headers["Location"])
    assert "Settings saved." in page.get_data(as_text=True)
    assert_no_cookie(page)


def test_the_token_can_also_travel_in_the_form_or_a_bearer_header(app, client, stores):
    token = app_token(client, STORE_A, OWNER_A)
    form = form_for(STORE_A, default_lead_days="21", token=token)
    assert client.post(f"/bigcommerce/app/{STORE_A}", data=form).status_code == 302
    assert settings_of(STORE_A).default_lead_days == 21

    status = client.get(
        f"/bigcommerce/app/{STORE_A}/status.json", headers={"Authorization": f"Bearer {token}"}
    )
    assert status.status_code == 200
    assert status.json["store"] == STORE_A
    assert status.json["inbox"]["pending"] == 0


def test_invalid_settings_save_nothing_and_keep_the_token(app, client, stores):
    token = app_token(client, STORE_A, OWNER_A)
    form = form_for(STORE_A, label_backorder="No date here", color_in_stock="green")

    response = client.post(f"/bigcommerce/app/{STORE_A}?token={token}", data=form)

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Include {eta}" in page and "Use a colour like" in page
    assert f'action="/bigcommerce/app/{STORE_A}?token={token}"' in page
    assert settings_of(STORE_A).label_backorder == "Backorder, ships by {eta}"


def test_a_token_for_one_store_cannot_read_or_change_another(app, client, stores):
    token_a = app_token(client, STORE_A, OWNER_A)

    assert client.get(f"/bigcommerce/app/{STORE_B}?token={token_a}").status_code == 403
    assert client.get(f"/bigcommerce/app/{STORE_B}/support?token={token_a}").status_code == 403
    refused = client.get(
        f"/bigcommerce/app/{STORE_B}/status.json", headers={"Authorization": f"Bearer {token_a}"}
    )
    assert refused.status_code == 403 and refused.json["error"]
    post = client.post(
        f"/bigcommerce/app/{STORE_B}?token={token_a}",
        data=form_for(STORE_B, label_in_stock="Hijacked"),
    )
    assert post.status_code == 403
    assert settings_of(STORE_B).label_in_stock == "In stock"


def test_a_user_of_one_store_gets_no_token_that_opens_another(app, client, stores):
    # Even a token the app signed, for a user who does not belong to store B, is refused there.
    forged_membership = bigcommerce_session.issue(app.config["SECRET_KEY"], STORE_B, str(OWNER_A))
    assert client.get(f"/bigcommerce/app/{STORE_B}?token={forged_membership}").status_code == 403


@pytest.mark.parametrize("token", ["", "not-a-token", "eyJzIjoiejR6bjN3byJ9.bad.sig"])
def test_pages_without_a_valid_token_are_refused(app, client, stores, token):
    response = client.get(f"/bigcommerce/app/{STORE_A}", query_string={"token": token})
    assert response.status_code == 401
    assert_no_cookie(response)
    post = client.post(f"/bigcommerce/app/{STORE_A}", data=form_for(STORE_A, token=token))
    assert post.status_code == 401


def test_support_page_shows_recent_badge_changes_and_the_inbox(app, client, stores):
    shop = find_shop(db.session, Platform.BIGCOMMERCE, STORE_A)
    product = factories.product(
        shop, "111", "Trail Runner", [{"platform_id": "222", "sku": "TR-42", "title": "42 / Blue"}]
    )
    [variant] = product.variants
    db.session.add(
        BadgeTransition(
            shop_id=shop.id,
            variant_id=variant.id,
            from_state=None,
            to_state=BadgeKind.BACKORDER,
            label="Backorder",
            cause="webhook",
        )
    )
    db.session.add(
        WebhookEvent(
            platform="bigcommerce",
            shop_id=shop.id,
            shop_domain=STORE_A,
            topic="store/sku/inventory/updated",
            event_id="evt-1",
            body=b"{}",
            headers={},
        )
    )
    db.session.commit()
    token = app_token(client, STORE_A, OWNER_A)

    page = client.get(f"/bigcommerce/app/{STORE_A}/support?token={token}")

    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Trail Runner · 42 / Blue" in text and "TR-42" in text and "<td>Backorder</td>" in text
    assert 'data-inbox="pending">1<' in text
    registered = f'Webhooks registered: <strong id="hooks-registered">{len(HOOK_SCOPES)}</strong>'
    assert registered in text


def test_the_status_feed_answers_json_refusals(app, client, stores):
    missing = client.get(f"/bigcommerce/app/{STORE_A}/status.json")
    assert missing.status_code == 401
    assert "Apps menu" in missing.json["error"]
    wrong = client.get(
        f"/bigcommerce/app/{STORE_A}/status.json", headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401 and wrong.json["error"] == "The app token is not valid."
