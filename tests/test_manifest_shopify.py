"""shopify.app.toml, app-manifest.json and the Flask routes tell the same story."""

from __future__ import annotations

import json
import tomllib
from urllib.parse import urlsplit

import pytest
from werkzeug.exceptions import MethodNotAllowed, NotFound

from plugin import ROOT

MANIFEST = json.loads((ROOT / "app-manifest.json").read_text())
SHOPIFY = MANIFEST["platforms"]["shopify"]
TOML = tomllib.loads((ROOT / "shopify.app.toml").read_text())


def test_scopes_agree():
    assert TOML["access_scopes"]["scopes"].split(",") == SHOPIFY["scopes"]
    assert TOML["access_scopes"]["use_legacy_install_flow"] is False  # managed install


def test_webhook_topics_and_api_version_agree():
    subscriptions = TOML["webhooks"]["subscriptions"]
    topics = [t for s in subscriptions for t in s.get("topics", [])]
    compliance = [t for s in subscriptions for t in s.get("compliance_topics", [])]
    assert TOML["webhooks"]["api_version"] == SHOPIFY["webhooks"]["api_version"]
    assert topics == SHOPIFY["webhooks"]["topics"]
    assert compliance == SHOPIFY["webhooks"]["compliance_topics"]
    assert set(compliance) == {"customers/data_request", "customers/redact", "shop/redact"}
    for subscription in subscriptions:
        uri = urlsplit(subscription["uri"])
        assert uri.scheme == "https"
        assert uri.path == SHOPIFY["urls"]["webhooks"]


def test_app_and_redirect_urls_agree():
    app_url = urlsplit(TOML["application_url"])
    assert app_url.scheme == "https" and app_url.path == SHOPIFY["urls"]["app"]
    assert [urlsplit(u).path for u in TOML["auth"]["redirect_urls"]] == [
        SHOPIFY["urls"]["auth_callback"]
    ]
    assert {urlsplit(u).netloc for u in TOML["auth"]["redirect_urls"]} == {app_url.netloc}
    assert TOML["embedded"] is True


def test_extension_and_metafields_agree():
    from connectors.shopify import queries

    extension = ROOT / SHOPIFY["theme_extension"]
    assert (extension / "shopify.extension.toml").is_file()
    assert SHOPIFY["metafields"]["namespace"] == queries.METAFIELD_NAMESPACE
    assert set(SHOPIFY["metafields"]["keys"]) == set(queries.METAFIELD_TYPES)


# The Shopify part and what every platform shares; each platform's branch checks its own part.
PATHS = [(f"shopify.{role}", path) for role, path in SHOPIFY["urls"].items()] + [
    (f"storefront.{role}", path) for role, path in MANIFEST["storefront"].items()
]


@pytest.mark.parametrize(("role", "path"), PATHS)
def test_every_manifest_path_is_served(app, role, path):
    if "<" in path:  # a route pattern: it must be one of the app's rules, as written
        assert path in {rule.rule for rule in app.url_map.iter_rules()}, role
        return
    adapter = app.url_map.bind("app.test")
    matched = False
    for method in ("GET", "POST"):
        try:
            adapter.match(path, method=method)
        except MethodNotAllowed:
            continue
        except NotFound:
            pytest.fail(f"{role}: {path} is not served")
        matched = True
        break
    assert matched, f"{role}: {path} accepts neither GET nor POST"


def test_the_webhook_source_reads_every_topic_the_app_subscribes_to():
    from webhooks.shopify import TOPICS

    subscribed = SHOPIFY["webhooks"]["topics"] + SHOPIFY["webhooks"]["compliance_topics"]
    assert sorted(TOPICS) == sorted(subscribed)


def test_protected_customer_data_is_declared_where_shopify_takes_it():
    # Shopify's app configuration has no field for it: the manifest holds the request (made in
    # the Partner Dashboard) and the TOML says so, next to the order topics that need it.
    declared = SHOPIFY["protected_customer_data"]
    assert declared["level"] == 2 and sorted(declared["fields"]) == ["email", "name"]
    assert declared["reason"]
    toml_text = (ROOT / "shopify.app.toml").read_text()
    assert "Protected customer data" in toml_text
    assert {"read_orders", "read_customers", "read_locales"} <= set(SHOPIFY["scopes"])


def test_the_app_proxy_reaches_the_notify_me_routes(app):
    proxy = TOML["app_proxy"]
    url = urlsplit(proxy["url"])
    assert url.scheme == "https"
    assert url.netloc == urlsplit(TOML["application_url"]).netloc
    assert "write_app_proxy" in SHOPIFY["scopes"]
    assert (proxy["prefix"], proxy["subpath"]) == ("apps", "backorder-badges")
    # The theme block's default path is where Shopify mounts the proxy.
    block = (ROOT / SHOPIFY["theme_extension"] / "blocks" / "backorder_badge.liquid").read_text()
    assert '"default": "/apps/backorder-badges"' in block
    adapter = app.url_map.bind("app.test")
    assert adapter.match(f"{url.path}/notify", method="POST")[0] == "notify_proxy.proxy_sign_up"
    assert adapter.match(f"{url.path}/notify/form", method="GET")[0] == "notify_proxy.proxy_form"
