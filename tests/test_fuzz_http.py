"""Fuzzing the app's HTTP surface (issue 13, must-have 3): zero 5xx, each refusal a clear 4xx.

- Every webhook endpoint gets signed and unsigned random bodies (bytes, text, huge, NUL,
  unicode, JSON nested deep, the real topics' fields with values of every type) and random
  headers. Whatever is acknowledged can be translated by its platform's source: nothing
  stored can fail in the worker for its shape.
- Every GET route of the app (public or not: the admin ones must refuse without credentials)
  gets random path values and hostile query strings.

Hypothesis runs derandomized (the same examples on every run) with a modest number of
examples, so this stays quick and stable in CI.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from urllib.parse import quote, urlencode

import pytest
import responses
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from plugin.extensions import db
from plugin.models import WebhookEvent
from plugin.platforms import webhook_source
from plugin.services.inbox import stored_delivery
from tests import factories
from tests.test_hostile_input import post
from webhooks import bigcommerce as bc_webhooks
from webhooks import sandbox as sandbox_webhooks
from webhooks import shopify as shopify_webhooks
from webhooks.source import StoreContext

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text as HTTP headers can carry it (latin-1, no line breaks), NUL and control bytes included.
header_text = st.one_of(
    st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), max_size=40),
    st.text(st.characters(max_codepoint=255, exclude_characters="\r\n"), min_size=250),
    st.sampled_from(["", " ", "\x00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30),
    st.text(min_size=300, max_size=400),
    st.sampled_from(["\x00", "9999-12-31T23:59:59-14:00", "stores/abc", "2026-11-30T09:00:00Z"]),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
# The fields the app's translations read, so that real topics meet values of the wrong type.
FIELDS = [
    "id",
    "inventory_item_id",
    "location_id",
    "available",
    "updated_at",
    "created_at",
    "variants",
    "line_items",
    "order_id",
    "order_edit",
    "customer",
    "orders_to_redact",
    "orders_requested",
    "refunds",
    "fulfillments",
    "variant_id",
    "scope",
    "producer",
    "data",
    "hash",
    "inventory",
    "orderId",
]
payloads = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)
TOPICS = {
    "shopify": shopify_webhooks.TOPICS,
    "sandbox": sandbox_webhooks.TOPICS,
    "bigcommerce": tuple(
        sorted(
            bc_webhooks.PRODUCT_SCOPES
            | bc_webhooks.PRODUCT_STOCK_SCOPES
            | bc_webhooks.SKU_STOCK_SCOPES
            | bc_webhooks.ORDER_SCOPES
            | bc_webhooks.SHIPMENT_SCOPES
        )
    ),
}


@st.composite
def bodies(draw, platform: str) -> bytes:
    kind = draw(st.sampled_from(["payload", "payload", "payload", "raw", "deep", "json"]))
    if kind == "raw":
        return draw(st.binary(max_size=200))
    if kind == "deep":
        depth = draw(st.integers(min_value=500, max_value=6000))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"data":', b"}")]))
        return opener * depth + (b"1" if opener != b"[" else b"") + closer * depth
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    payload = draw(payloads)
    if platform == "bigcommerce":
        payload.setdefault("scope", draw(st.sampled_from(TOPICS["bigcommerce"])))
        payload.setdefault("producer", f"stores/{factories.BIGCOMMERCE_STORE}")
    return json.dumps(payload).encode()


def check_refusal(response, what: str = "") -> None:
    """No 5xx; a refusal says why (JSON `error` on the API paths, a page elsewhere)."""
    text = response.get_data(as_text=True)
    assert response.status_code < 500, (what, response.status_code, text[:500])
    if response.status_code >= 400:
        if response.is_json:
            message = response.json["error"]
            assert isinstance(message, str) and message.strip(), (what, response.json)
        else:
            assert text.strip(), what


@pytest.fixture
def stores(app, monkeypatch):
    """The three platforms' stores, and a queue that only records: what is acknowledged is
    checked below, without calling any platform."""
    factories.shopify_shop()
    factories.shop()
    factories.bigcommerce_store()
    queued: list[int] = []
    monkeypatch.setattr("plugin.jobs.queue_webhook", lambda event_id, **_: queued.append(event_id))
    return queued


def every_acknowledged_delivery_translates() -> None:
    for event in db.session.scalars(select(WebhookEvent)):
        webhook_source(event.platform).to_events(stored_delivery(event), StoreContext())


@pytest.mark.parametrize("platform", ["shopify", "sandbox", "bigcommerce"])
def test_signed_deliveries_never_get_a_5xx(client, stores, platform):
    @FUZZ
    @given(data=st.data())
    def run(data):
        body = data.draw(bodies(platform))
        fields = {"event_id": data.draw(st.one_of(st.just(str(uuid.uuid4())), header_text))}
        if platform != "bigcommerce":
            fields["topic"] = data.draw(st.one_of(st.sampled_from(TOPICS[platform]), header_text))
            fields["shop"] = data.draw(
                st.one_of(
                    st.just(
                        factories.SHOPIFY_SHOP if platform == "shopify" else factories.SANDBOX_SHOP
                    ),
                    header_text,
                )
            )
            fields["triggered_at"] = data.draw(
                st.one_of(st.just(datetime.now(UTC).isoformat()), header_text)
            )
        if platform == "bigcommerce":
            # The signer signs text: bodies that are not UTF-8 go unsigned instead.
            try:
                body.decode()
            except UnicodeDecodeError:
                body = body.decode("latin-1").encode()
        check_refusal(post(client, platform, body, **fields))

    run()
    every_acknowledged_delivery_translates()


@pytest.mark.parametrize("platform", ["shopify", "sandbox", "bigcommerce"])
def test_unsigned_deliveries_never_get_a_5xx(client, stores, platform):
    names = {
        "shopify": [
            "X-Shopify-Topic",
            "X-Shopify-Hmac-Sha256",
            "X-Shopify-Shop-Domain",
            "X-Shopify-Event-Id",
            "X-Shopify-Webhook-Id",
            "X-Shopify-Triggered-At",
        ],
        "sandbox": [
            sandbox_webhooks.H_TOPIC,
            sandbox_webhooks.H_SHOP,
            sandbox_webhooks.H_EVENT,
            sandbox_webhooks.H_TRIGGERED,
            sandbox_webhooks.H_HMAC,
        ],
        "bigcommerce": [
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature",
            bc_webhooks.SECRET_HEADER,
        ],
    }[platform]

    @FUZZ
    @given(body=bodies(platform), headers=st.dictionaries(st.sampled_from(names), header_text))
    def run(body, headers):
        response = client.post(f"/webhooks/{platform}", data=body, headers=headers)
        check_refusal(response)
        assert response.status_code in (400, 401), response.get_data(as_text=True)

    run()
    assert db.session.scalars(select(WebhookEvent)).first() is None


QUERY_KEYS = [
    "shop",
    "variants",
    "variant",
    "product",
    "locale",
    "id_token",
    "hmac",
    "signature",
    "timestamp",
    "host",
    "embedded",
    "code",
    "state",
    "scope",
    "context",
    "signed_payload_jwt",
    "signed_payload",
    "token",
    "q",
    "page",
    "before",
    "path_prefix",
    "logged_in_customer_id",
    "lang",
    "format",
]
query_values = st.one_of(
    st.text(max_size=30),
    st.text(min_size=2000, max_size=2100),
    st.sampled_from(
        ["\x00", "%00", "-1", "99999999999999999999", "1,2,\x00", "' OR 1=1 --", "<script>"]
    ),
    st.integers(min_value=-(2**64), max_value=2**64).map(str),
)
path_values = st.one_of(
    st.integers(min_value=-(2**40), max_value=2**40).map(str),
    st.text(st.characters(exclude_characters="/"), min_size=1, max_size=40),
    st.text(st.characters(exclude_characters="/"), min_size=300, max_size=320),
    st.sampled_from(["\x00", "..", "%00", "a" * 70]),
)


def get_routes(app) -> list[str]:
    rules = [
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in rule.methods and rule.endpoint != "static"
    ]
    return sorted(set(rules))


def test_every_get_route_refuses_hostile_query_strings_with_a_4xx(app, client, stores):
    routes = get_routes(app)
    assert len(routes) > 20  # the enumeration found the app, not nothing

    def fill(route: str, value: str) -> str:
        return re.sub(r"<(?:[^:>]+:)?[^>]+>", quote(value, safe=""), route)

    # Every route, every key, each of the worst values (random draws may miss a route).
    with responses.RequestsMock(assert_all_requests_are_fired=False):
        for route in routes:
            raw = f"{fill(route, '%ff')}?shop=%ff%fe&variants=%ff&q=%c0%80"  # not UTF-8
            check_refusal(client.get(raw), raw)
            for value in ("\x00", "x" * 3000, "\u202e\U0001f4a9", "-1"):
                for shop in ("", factories.SHOPIFY_SHOP, factories.BIGCOMMERCE_STORE):
                    params = {key: value for key in QUERY_KEYS}
                    if shop:
                        params["shop"] = shop
                    for path_value in (value, "1"):
                        url = f"{fill(route, path_value)}?{urlencode(params)}"
                        check_refusal(client.get(url), url)

    @FUZZ
    @given(
        route=st.sampled_from(routes),
        params=st.lists(st.tuples(st.sampled_from(QUERY_KEYS), query_values), max_size=5),
        values=st.lists(path_values, min_size=4, max_size=4),
        known_shop=st.booleans(),
    )
    def run(route, params, values, known_shop):
        slots = iter(values)
        path = re.sub(r"<(?:[^:>]+:)?[^>]+>", lambda _m: quote(next(slots), safe=""), route)
        if known_shop:
            params = [("shop", factories.SHOPIFY_SHOP), *params]
        url = f"{path}?{urlencode(params)}" if params else path
        with responses.RequestsMock(assert_all_requests_are_fired=False):
            response = client.get(url)
        check_refusal(response, url)

    run()
