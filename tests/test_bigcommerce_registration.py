"""Webhook and storefront-script registration against BigCommerce's V3 API, kept idempotent."""

from __future__ import annotations

import pytest
import responses

from connectors.base import RateLimited
from connectors.bigcommerce.client import BigCommerceClient
from connectors.bigcommerce.registration import register_store
from tests.bc_callback_helpers import (
    APP_URL,
    CLIENT_ID,
    HOOK_SCOPES,
    FakeStore,
    expected_hook_body,
    expected_script_body,
)

STORE = "g5cd38"
SECRET = "s3cret-header-value"
DESTINATION = APP_URL + "/webhooks/bigcommerce"


def hook(hook_id, scope, destination=DESTINATION, headers=None, is_active=True):
    return {
        "id": hook_id,
        "client_id": CLIENT_ID,
        "store_hash": STORE,
        "created_at": 1561488106,
        "updated_at": 1561488106,
        "scope": scope,
        "destination": destination,
        "is_active": is_active,
        "headers": headers if headers is not None else {"X-Backorder-Secret": SECRET},
    }


@pytest.fixture
def bc():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        yield rsps


def register(sleeps=None):
    client = BigCommerceClient(STORE, "token", sleep=(sleeps if sleeps is not None else []).append)
    return register_store(client, APP_URL, STORE, SECRET)


def test_existing_hooks_on_later_pages_are_found_not_duplicated(bc):
    others = [hook(100 + i, "store/cart/created", f"https://o{i}.example/hooks") for i in range(5)]
    ours = [hook(900 + i, scope) for i, scope in enumerate(HOOK_SCOPES[:4])]
    store = FakeStore(STORE, hooks=others + ours, page_size=2).install(bc)

    result = register()

    hook_gets = [r for r in bc.calls if r.request.method == "GET" and "/v3/hooks" in r.request.url]
    assert len(hook_gets) == 5  # 9 hooks, 2 per page
    assert "page=5" in hook_gets[-1].request.url
    missing = HOOK_SCOPES[4:]
    assert store.writes()[: len(missing)] == [
        ("POST", "/v3/hooks", expected_hook_body(scope, SECRET)) for scope in missing
    ]
    assert result.hook_ids[HOOK_SCOPES[0]] == 900
    assert len(store.hooks) == len(others) + len(HOOK_SCOPES)


def test_a_hook_to_another_destination_does_not_count(bc):
    old = [
        hook(700 + i, scope, "https://old-app.example/webhooks/bigcommerce")
        for i, scope in enumerate(HOOK_SCOPES)
    ]
    store = FakeStore(STORE, hooks=old).install(bc)

    register()

    posts = [w for w in store.writes() if w[1] == "/v3/hooks"]
    assert posts == [("POST", "/v3/hooks", expected_hook_body(s, SECRET)) for s in HOOK_SCOPES]


def test_header_names_match_case_insensitively_and_a_stale_secret_is_replaced(bc):
    hooks = [hook(800 + i, scope) for i, scope in enumerate(HOOK_SCOPES)]
    hooks[0]["headers"] = {"x-backorder-secret": SECRET}  # same header, as HTTP sees it
    hooks[1]["headers"] = {"X-Backorder-Secret": "an-old-secret"}
    hooks[2]["headers"] = None
    script = {"uuid": "03805148-a592-4803-9482-e91fe5c1be12", **expected_script_body(STORE, None)}
    store = FakeStore(STORE, hooks=hooks, scripts=[script]).install(bc)

    result = register()

    assert store.writes() == [
        ("PUT", "/v3/hooks/801", expected_hook_body(HOOK_SCOPES[1], SECRET)),
        ("PUT", "/v3/hooks/802", expected_hook_body(HOOK_SCOPES[2], SECRET)),
    ]
    assert result.script_uuid == script["uuid"]


def test_a_drifted_script_is_updated_and_a_duplicate_removed(bc):
    old = {
        "uuid": "11111111-a592-4803-9482-e91fe5c1be12",
        **expected_script_body(STORE, None),
        "src": "https://old-app.example/static/badge-widget.js",
        "consent_category": "unknown",
    }
    copy = {"uuid": "22222222-a592-4803-9482-e91fe5c1be12", **expected_script_body(STORE, None)}
    unrelated = {"uuid": "33333333-a592-4803-9482-e91fe5c1be12", "name": "Another script"}
    store = FakeStore(
        STORE,
        hooks=[hook(800 + i, s) for i, s in enumerate(HOOK_SCOPES)],
        scripts=[old, copy, unrelated],
    ).install(bc)

    result = register()

    assert store.writes() == [
        ("PUT", f"/v3/content/scripts/{old['uuid']}", expected_script_body(STORE, None)),
        ("DELETE", f"/v3/content/scripts/{copy['uuid']}", None),
    ]
    assert result.script_uuid == old["uuid"]
    assert [s["name"] for s in store.scripts] == ["Backorder Badges", "Another script"]


def test_a_rate_limited_registration_waits_briefly_and_sends_the_same_write_again(bc):
    store = FakeStore(STORE, rate_limit_writes=1, rate_limit_reset_ms=800).install(bc)
    sleeps: list[float] = []

    register(sleeps)

    hook_posts = [r for r in store.requests if r[:2] == ("POST", "/v3/hooks")]
    assert len(hook_posts) == 1 + len(HOOK_SCOPES)  # one answered 429, then each scope once
    assert hook_posts[0] == hook_posts[1]
    assert sleeps[0] == pytest.approx(0.8)
    assert sorted(h["scope"] for h in store.hooks) == sorted(HOOK_SCOPES)


def test_a_long_rate_limit_fails_fast_and_the_next_try_writes_each_hook_once(bc):
    """Waiting 1.5 s would hold the request (or job): it says when to come back instead, and
    registration being idempotent, the next try finishes it without duplicates."""
    store = FakeStore(STORE, rate_limit_writes=1, rate_limit_reset_ms=1500).install(bc)
    sleeps: list[float] = []

    with pytest.raises(RateLimited) as refused:
        register(sleeps)
    assert refused.value.retry_after == pytest.approx(1.5)
    assert sleeps == []
    assert store.hooks == []

    register(sleeps)
    assert sorted(h["scope"] for h in store.hooks) == sorted(HOOK_SCOPES)
