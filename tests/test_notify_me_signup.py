"""Notify-me sign-ups over HTTP: what a shopper (or a bot) sends, what they read back, and what
is stored as consent evidence. Every refusal is a 4xx in the shopper's language and stores
nothing."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import jwt
import pytest
from sqlalchemy import func, select

from plugin.extensions import db
from plugin.models import (
    MailStatus,
    NotifySubscription,
    OutboxMail,
    Platform,
    SubscriptionStatus,
)
from plugin.services.notify_texts import consent_version, form_texts
from tests import factories
from webhooks import shopify_app_proxy

SHOPIFY_SECRET = "shopify-client-secret"  # tests/conftest.py base_env
BC_SECRET = "bc-client-secret"
pytestmark = pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0"


def store_with_variants(owner=None, *, country=None, origins=()):
    owner = owner or factories.shop()
    owner.name = "Maison Lune"
    owner.country = country
    owner.storefront_origins = list(origins)
    db.session.commit()
    factories.product(
        owner,
        "p1",
        "Linen shirt",
        [
            {"platform_id": "v-oos", "title": "M / Blue", "badge": ("out_of_stock", "Out", None)},
            {"platform_id": "v-in", "title": "L / Blue", "badge": ("in_stock", "In stock", None)},
            {
                "platform_id": "v-bo",
                "title": "S / Blue",
                "badge": ("backorder", "Backorder", None),
            },
        ],
    )
    return owner


def version_for(owner, language="en"):
    return consent_version(form_texts(owner.settings, language, owner.name)["consent"])


def body(owner, **overrides):
    data = {
        "variant": "v-oos",
        "email": "Ada@Example.com",
        "locale": "en",
        "consent_version": version_for(owner),
        "consent": True,
        "form": "sandbox",
        "page": "https://shop.example/products/linen-shirt",
        "website": "",
    }
    data.update(overrides)
    return data


def post(client, owner, ip="203.0.113.77", **overrides):
    return client.post(
        f"/storefront/v1/notify?shop={owner.domain}",
        json=body(owner, **overrides),
        headers={"User-Agent": UA},
        environ_base={"REMOTE_ADDR": ip},
    )


def stored() -> int:
    return db.session.scalar(select(func.count(NotifySubscription.id)))


def test_a_sign_up_keeps_its_consent_evidence(client):
    owner = store_with_variants()
    response = post(client, owner)
    assert response.status_code == 201
    assert response.json == {
        "status": "subscribed",
        "message": "Thanks! We'll email you when it's back in stock.",
    }
    sub = db.session.scalars(select(NotifySubscription)).one()
    assert sub.email == "ada@example.com"
    assert sub.status == SubscriptionStatus.ACTIVE
    assert sub.consent_text.startswith("I agree to receive one email from Maison Lune")
    assert sub.consent_version == version_for(owner)
    assert (sub.form, sub.page_url) == ("sandbox", "https://shop.example/products/linen-shirt")
    assert sub.ip_truncated == "203.0.113.0/24"
    assert sub.user_agent == UA
    assert sub.created_at is not None and sub.confirmed_at is not None

    again = post(client, owner, email="ada@example.com")
    assert again.status_code == 200
    assert again.json["status"] == "already_subscribed"
    assert stored() == 1


def test_the_form_config_is_in_the_shoppers_language(client):
    owner = store_with_variants()
    answer = client.get(f"/storefront/v1/notify/form?shop={owner.domain}&locale=fr-CA").json
    assert answer["locale"] == "fr"
    assert answer["enabled"] is True and answer["show_on"] == ["out_of_stock"]
    assert answer["texts"]["button"] == "Me prévenir"
    assert answer["consent_version"] == version_for(owner, "fr")
    french = post(client, owner, locale="fr", consent_version=answer["consent_version"])
    assert french.status_code == 201
    assert french.json["message"].startswith("Merci")


@pytest.mark.parametrize(
    ("overrides", "status", "code", "text"),
    [
        ({"email": "not-an-address"}, 422, "invalid_email", "Enter a valid email address"),
        ({"email": "a@b"}, 422, "invalid_email", "Enter a valid email address"),
        ({"email": "x" * 300 + "@example.com"}, 422, "invalid_email", "valid email"),
        ({"variant": "v-missing"}, 404, "unknown_variant", "can't be found"),
        ({"variant": "v-in"}, 409, "not_offered", "available now"),
        ({"variant": "v-bo"}, 409, "not_offered", "available now"),
        ({"consent_version": "0123456789ab"}, 409, "stale_form", "out of date"),
        ({"consent_version": ""}, 400, "bad_request", "missing"),
        ({"consent": False}, 422, "consent_required", "tick the box"),
        ({"consent": None}, 422, "consent_required", "tick the box"),
        ({"website": "https://spam.example"}, 400, "rejected", "couldn't sign you up"),
        ({"email": ["a@example.com"]}, 400, "bad_request", "missing"),
        ({"form": "elsewhere"}, 400, "bad_request", "missing"),
    ],
)
def test_refusals_are_clear_and_store_nothing(client, overrides, status, code, text):
    owner = store_with_variants()
    response = post(client, owner, **overrides)
    assert response.status_code == status
    assert response.json["error"] == code
    assert text in response.json["message"]
    if code == "invalid_email":
        assert response.json["field"] == "email"
    assert stored() == 0
    assert db.session.scalar(select(func.count(OutboxMail.id))) == 0


def test_refusals_speak_the_shoppers_language(client):
    owner = store_with_variants()
    response = post(client, owner, email="kein-at", locale="de-AT")
    assert response.status_code == 422
    assert response.json["message"].startswith("Geben Sie eine gültige E-Mail-Adresse ein")


def test_an_oversized_body_is_refused(client):
    owner = store_with_variants()
    response = post(client, owner, page="https://shop.example/" + "x" * 9000)
    assert response.status_code == 413
    assert response.json["error"] == "too_large"
    assert stored() == 0


def test_unknown_and_uninstalled_shops_are_refused(client):
    owner = store_with_variants()
    assert (
        client.post("/storefront/v1/notify?shop=nobody.example", json=body(owner)).status_code
        == 404
    )
    from plugin.services import shops

    shops.mark_uninstalled(owner, datetime.now(UTC))
    db.session.commit()
    response = post(client, owner)
    assert response.status_code == 404
    assert response.json["error"] == "unknown_shop"
    # A NUL never reaches the database: refused at the door of every public route.
    assert client.get("/storefront/v1/notify/form?shop=%00").status_code == 400
    assert stored() == 0


def test_on_backorder_too_when_the_merchant_says_so(client):
    owner = store_with_variants()
    owner.settings.notify_on_backorder = True
    db.session.commit()
    assert post(client, owner, variant="v-bo").status_code == 201
    owner.settings.notify_enabled = False
    db.session.commit()
    assert post(client, owner, email="b@example.com").json["error"] == "not_offered"
    assert client.get(f"/storefront/v1/notify/form?shop={owner.domain}").json["enabled"] is False


# --- double opt-in -------------------------------------------------------------------------------


def test_double_opt_in_for_an_eu_store_mails_a_confirmation_and_never_alerts_before(client):
    owner = store_with_variants(country="DE")
    assert client.get(f"/storefront/v1/notify/form?shop={owner.domain}").json["double_opt_in"]
    response = post(client, owner)
    assert response.status_code == 201
    assert response.json["status"] == "pending_confirmation"
    sub = db.session.scalars(select(NotifySubscription)).one()
    assert sub.status == SubscriptionStatus.PENDING and sub.double_opt_in
    mail = db.session.scalars(select(OutboxMail)).one()
    assert mail.kind == "notify_confirm" and mail.recipient == "ada@example.com"
    assert mail.status == MailStatus.SENT  # the embedded default's local outbox
    confirm = f"/notify/confirm/{sub.token}"
    assert f"https://app.test{confirm}" in mail.text_body
    # No advertising in a confirmation: no product link, no offers, only the confirm button.
    assert "/products/" not in mail.html_body and "unsubscribe" not in mail.text_body.lower()

    # A link scanner's GET shows the page but confirms nothing.
    page = client.get(confirm)
    assert page.status_code == 200 and b"Yes, notify me" in page.data
    db.session.expire_all()
    assert db.session.get(NotifySubscription, sub.id).status == SubscriptionStatus.PENDING
    done = client.post(confirm)
    assert b"on the list" in done.data
    db.session.expire_all()
    assert db.session.get(NotifySubscription, sub.id).status == SubscriptionStatus.ACTIVE


def test_the_merchant_can_turn_double_opt_in_on_or_off(client):
    owner = store_with_variants(country="US")
    assert post(client, owner).json["status"] == "subscribed"
    owner.settings.notify_double_opt_in = True
    db.session.commit()
    assert post(client, owner, email="b@example.com").json["status"] == "pending_confirmation"


def test_unsubscribe_page_asks_and_a_post_stops_it(client):
    owner = store_with_variants()
    post(client, owner)
    sub = db.session.scalars(select(NotifySubscription)).one()
    link = f"/notify/unsubscribe/{sub.token}"
    page = client.get(link)
    assert page.status_code == 200 and b"Unsubscribe?" in page.data
    db.session.expire_all()
    assert db.session.get(NotifySubscription, sub.id).status == SubscriptionStatus.ACTIVE
    # Exactly what Gmail sends for RFC 8058 one-click: no cookies, no login.
    response = client.post(
        link,
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    db.session.expire_all()
    assert db.session.get(NotifySubscription, sub.id).status == SubscriptionStatus.UNSUBSCRIBED
    assert client.get("/notify/unsubscribe/forged-token").status_code == 404
    # The address may sign up again later.
    assert post(client, owner).status_code == 201


# --- rate limits ---------------------------------------------------------------------------------


def test_one_address_over_its_limit_is_refused(client):
    owner = store_with_variants()
    codes = [post(client, owner, ip=f"198.51.100.{n}").status_code for n in range(6)]
    assert codes == [201, 200, 200, 200, 200, 429]
    refused = post(client, owner, ip="198.51.100.99", locale="es")
    assert refused.status_code == 429
    assert refused.json["message"].startswith("Demasiados intentos")


def test_one_ip_over_its_limit_is_refused(client):
    owner = store_with_variants()
    codes = [post(client, owner, email=f"s{n}@example.com").status_code for n in range(11)]
    assert codes[:10] == [201] * 10 and codes[10] == 429
    assert stored() == 10


# --- CORS ----------------------------------------------------------------------------------------


def test_only_the_stores_own_origins_may_call_cross_origin(client):
    owner = store_with_variants(origins=["https://shop.example"])
    preflight = client.options(
        f"/storefront/v1/notify?shop={owner.domain}",
        headers={"Origin": "https://shop.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    other = client.options(
        f"/storefront/v1/notify?shop={owner.domain}",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in other.headers
    refused = client.post(
        f"/storefront/v1/notify?shop={owner.domain}",
        json=body(owner),
        headers={"Origin": "https://evil.example"},
    )
    assert refused.status_code == 403
    assert stored() == 0
    ok = client.post(
        f"/storefront/v1/notify?shop={owner.domain}",
        json=body(owner),
        headers={"Origin": "https://shop.example"},
    )
    assert ok.status_code == 201
    assert ok.headers["Access-Control-Allow-Origin"] == "https://shop.example"


# --- BigCommerce: the signed-in customer's JWT ----------------------------------------------------


def customer_jwt(secret=BC_SECRET, store_hash=factories.BIGCOMMERCE_STORE, email="ada@example.com"):
    now = int(time.time())
    claims = {
        "customer": {"id": 4242, "email": email, "group_id": "0"},
        "iss": "bc/apps",
        "iat": now,
        "exp": now + 900,
        "version": 1,
        "aud": "bc-client-id",
        "application_id": "bc-client-id",
        "store_hash": store_hash,
        "operation": "current_customer",
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def test_a_bigcommerce_customer_jwt_is_verified(client):
    owner = store_with_variants(factories.bigcommerce_store(), country="FR")
    good = post(client, owner, form="bigcommerce_script", customer_jwt=customer_jwt())
    assert good.status_code == 201
    # Signed in, with their own address: the platform already proved it (no confirmation).
    assert good.json["status"] == "subscribed"
    assert db.session.scalars(select(NotifySubscription)).one().customer_id == "4242"

    for forged in (
        customer_jwt(secret="not-the-secret"),
        customer_jwt(store_hash="otherstore"),
        "not.a.jwt",
    ):
        refused = post(client, owner, email="eve@example.com", customer_jwt=forged)
        assert refused.status_code == 401
        assert refused.json["error"] == "invalid_customer"
    assert stored() == 1


# --- Shopify: the app proxy's signature -----------------------------------------------------------


def proxy_query(shop_domain, *, secret=SHOPIFY_SECRET, timestamp=None, customer="", extra=()):
    pairs = [
        ("shop", shop_domain),
        ("logged_in_customer_id", customer),
        ("path_prefix", "/apps/backorder-badges"),
        ("timestamp", str(timestamp if timestamp is not None else int(time.time()))),
        *extra,
    ]
    pairs.append(("signature", shopify_app_proxy.sign(pairs, secret)))
    return urlencode(pairs)


def proxy_post(client, owner, query, **overrides):
    return client.post(
        f"/proxy/shopify/notify?{query}",
        json=body(owner, form="shopify_block", **overrides),
        headers={"X-Forwarded-For": "192.0.2.10, 10.0.0.1", "User-Agent": UA},
    )


def test_a_signed_app_proxy_request_signs_up(client):
    owner = store_with_variants(factories.shopify_shop())
    query = proxy_query(owner.domain, customer="77", extra=[("extra", "1"), ("extra", "2")])
    response = proxy_post(client, owner, query)
    assert response.status_code == 201, response.json
    sub = db.session.scalars(select(NotifySubscription)).one()
    assert (sub.customer_id, sub.ip_truncated, sub.form) == ("77", "192.0.2.0/24", "shopify_block")
    # The theme's own parameters are forwarded and signed with Shopify's.
    signed = proxy_query(owner.domain, extra=[("locale", "de"), ("variant", "v-oos")])
    config = client.get(f"/proxy/shopify/notify/form?{signed}")
    assert config.status_code == 200 and config.json["locale"] == "de"


@pytest.mark.parametrize(
    "how",
    ["forged", "stale", "future", "no-signature", "repeated-shop", "body-names-another-shop"],
)
def test_forged_or_stale_app_proxy_requests_are_refused(client, how):
    owner = store_with_variants(factories.shopify_shop())
    other = store_with_variants(factories.shopify_shop("other-shop.myshopify.com"))
    now = int(time.time())
    query = {
        "forged": proxy_query(owner.domain, secret="guessed-secret"),
        "stale": proxy_query(owner.domain, timestamp=now - 3600),
        "future": proxy_query(owner.domain, timestamp=now + 3600),
        "no-signature": urlencode({"shop": owner.domain, "timestamp": now}),
        "repeated-shop": proxy_query(owner.domain, extra=[("shop", other.domain)]),
        "body-names-another-shop": proxy_query(owner.domain),
    }[how]
    if how == "body-names-another-shop":
        # The body's shop is ignored: the sign-up lands on the signed shop only.
        response = proxy_post(client, owner, query, shop=other.domain)
        assert response.status_code == 201
        sub = db.session.scalars(select(NotifySubscription)).one()
        assert sub.shop_id == owner.id
        return
    response = proxy_post(client, owner, query)
    assert response.status_code == 401
    assert response.json["error"] == "rejected"
    assert stored() == 0


def test_app_proxy_signature_matches_shopifys_documented_vectors():
    from urllib.parse import parse_qsl

    p1 = (
        "extra=1&extra=2&shop=shop-name.myshopify.com&path_prefix=%2Fapps%2Fawesome_reviews"
        "&timestamp=1317327555"
    )
    vectors = {
        p1: "a9718877bea71c2484f91608a7eaea1532bdf71f5c56825065fa4ccabe549ef3",
        p1 + "&logged_in_customer_id=1": (
            "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb"
        ),
        p1 + "&logged_in_customer_id=": (
            "e072b6d7e6622d85912a5214b860d3100dc1e73d9bc29f43796ac8c9ff8093cb"
        ),
    }
    signed_at = datetime.fromtimestamp(1317327555, UTC) + timedelta(seconds=30)
    for query, signature in vectors.items():
        pairs = parse_qsl(query, keep_blank_values=True)
        assert shopify_app_proxy.sign(pairs, "hush") == signature
        verified = shopify_app_proxy.verify([*pairs, ("signature", signature)], "hush", signed_at)
        assert verified.shop == "shop-name.myshopify.com"
    with pytest.raises(shopify_app_proxy.ProxyRefused):
        shopify_app_proxy.verify(
            [*parse_qsl(p1), ("signature", vectors[p1])],
            "hush",
            signed_at + timedelta(minutes=5),
        )


def test_one_shop_cannot_sign_up_for_another_shops_variant(client):
    owner = store_with_variants()
    other = factories.shop("other.sandbox.local", Platform.SANDBOX)
    other.name = "Other"
    db.session.commit()
    response = client.post(
        f"/storefront/v1/notify?shop={other.domain}", json=body(owner, consent_version="x")
    )
    assert response.status_code == 404
    assert response.json["error"] == "unknown_variant"
    assert stored() == 0
