"""Making sure a store sends the app its webhooks and shows the storefront script.

Runs on every install and every load, so it must be idempotent: it lists what the app already
registered (V3 hooks and scripts only list the calling app's own), keeps what is right, repairs
what drifted (a hook BigCommerce deactivated after 90 quiet days, a stale secret header, a script
pointing at an old URL) and creates only what is missing. A reinstall or a second load therefore
never leaves duplicate hooks or scripts behind.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlencode

WEBHOOK_SECRET_HEADER = "X-Backorder-Secret"  # noqa: S105 - a header name, not a secret
WEBHOOK_PATH = "/webhooks/bigcommerce"
WEBHOOK_SCOPES = (
    "store/product/created",
    "store/product/updated",
    "store/product/inventory/updated",
    "store/product/inventory/order/updated",
    "store/sku/inventory/updated",
    "store/sku/inventory/order/updated",
    "store/order/created",
    "store/order/updated",
    "store/order/statusUpdated",
    "store/order/refund/created",
    "store/shipment/created",
)
SCRIPT_NAME = "Backorder Badges"
WIDGET_PATH = "/static/badge-widget-bc.js"
PAGE_LIMIT = 250
MAX_PAGES = 40  # 10,000 hooks: far beyond what one app can hold; stops a looping paginator


class V3Client(Protocol):
    def request(
        self, method: str, path: str, json: object = None, params: dict | None = None
    ) -> dict: ...


@dataclass
class RegistrationResult:
    hook_ids: dict[str, int] = field(default_factory=dict)
    script_uuid: str | None = None
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)


def new_webhook_secret() -> str:
    return secrets.token_urlsafe(32)


def script_body(app_url: str, store_hash: str, client_id: str | None = None) -> dict:
    """The script as the app wants it; `visibility: storefront` is every page but checkout,
    so the widget itself stays silent off product pages. The app's client id lets the widget
    ask the store for a signed-in shopper's `/customer/current.jwt`."""
    query = urlencode({"store": store_hash, **({"client_id": client_id} if client_id else {})})
    return {
        "name": SCRIPT_NAME,
        "description": "Shows each variant's stock, backorder and ship-by date on product pages.",
        "kind": "src",
        "src": f"{app_url}{WIDGET_PATH}?{query}",
        "load_method": "async",
        "location": "footer",
        "visibility": "storefront",
        "consent_category": "functional",
        "auto_uninstall": True,
        "enabled": True,
    }


def _all_pages(client: V3Client, path: str) -> list[dict]:
    items: list[dict] = []
    for page in range(1, MAX_PAGES + 1):
        body = client.request("GET", path, params={"page": page, "limit": PAGE_LIMIT})
        data = body.get("data") or []
        items.extend(item for item in data if isinstance(item, dict))
        pagination = (body.get("meta") or {}).get("pagination") or {}
        total_pages = pagination.get("total_pages")
        if not data or not isinstance(total_pages, int) or page >= total_pages:
            break
    return items


def ensure_webhooks(
    client: V3Client, destination: str, secret: str, result: RegistrationResult
) -> None:
    wanted_headers = {WEBHOOK_SECRET_HEADER: secret}
    existing = [h for h in _all_pages(client, "/v3/hooks") if h.get("destination") == destination]
    for scope in WEBHOOK_SCOPES:
        matches = [h for h in existing if h.get("scope") == scope]
        body = {
            "scope": scope,
            "destination": destination,
            "is_active": True,
            "headers": wanted_headers,
        }
        if not matches:
            created = client.request("POST", "/v3/hooks", json=body).get("data") or {}
            result.created.append(scope)
            if created.get("id") is not None:
                result.hook_ids[scope] = created["id"]
            continue
        hook = matches[0]
        result.hook_ids[scope] = hook["id"]
        stale = not _same_headers(hook.get("headers"), wanted_headers)
        if hook.get("is_active") is not True or stale:
            client.request("PUT", f"/v3/hooks/{hook['id']}", json=body)
            result.updated.append(scope)


def _same_headers(have: object, want: dict[str, str]) -> bool:
    """Header names are case-insensitive; compare them the way HTTP will."""
    if not isinstance(have, dict):
        return False
    return {str(k).lower(): v for k, v in have.items()} == {k.lower(): v for k, v in want.items()}


def ensure_script(client: V3Client, body: dict, result: RegistrationResult) -> None:
    ours = [s for s in _all_pages(client, "/v3/content/scripts") if s.get("name") == SCRIPT_NAME]
    if not ours:
        created = client.request("POST", "/v3/content/scripts", json=body).get("data") or {}
        result.script_uuid = created.get("uuid")
        result.created.append("script")
        return
    script, extras = ours[0], ours[1:]
    result.script_uuid = script.get("uuid")
    if any(script.get(key) != value for key, value in body.items()):
        client.request("PUT", f"/v3/content/scripts/{script['uuid']}", json=body)
        result.updated.append("script")
    # An app may hold only 10 scripts; a copy left by an interrupted earlier run goes.
    for extra in extras:
        client.request("DELETE", f"/v3/content/scripts/{extra['uuid']}")
        result.updated.append("script-duplicate-removed")


def register_store(
    client: V3Client, app_url: str, store_hash: str, secret: str, client_id: str | None = None
) -> RegistrationResult:
    """Hooks first (badges depend on them), then the storefront script."""
    result = RegistrationResult()
    ensure_webhooks(client, app_url + WEBHOOK_PATH, secret, result)
    ensure_script(client, script_body(app_url, store_hash, client_id), result)
    return result
