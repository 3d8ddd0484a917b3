"""BigCommerce as the install tests meet it: signed callback payloads and a fake V3 API.

Payloads are built the way BigCommerce builds them (PyJWT, HS256, the claims its docs list;
legacy payloads as base64(json).base64(hex hmac)). The fake V3 API keeps state, so a second
install or load sees what the first one registered, and records every request for assertions.
Its catalogue, stock, metafields, V2 orders and store information (what the sync after an
install reads and writes) are answered by `fakes.bigcommerce`'s store, reachable as
`FakeStore.catalogue`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
import warnings
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import jwt
import responses
from jwt.warnings import InsecureKeyLengthWarning

from fakes import bigcommerce as fake_catalogue

CLIENT_ID = "bc-client-id"
CLIENT_SECRET = "bc-client-secret"
APP_URL = "https://app.test"
TOKEN_URL = "https://login.bigcommerce.com/oauth2/token"
API = "https://api.bigcommerce.com/stores/{store_hash}"
RATE_HEADERS = {
    "X-Rate-Limit-Requests-Left": "140",
    "X-Rate-Limit-Requests-Quota": "150",
    "X-Rate-Limit-Time-Reset-Ms": "20000",
    "X-Rate-Limit-Time-Window-Ms": "30000",
}


def load_jwt(
    store_hash: str,
    user_id: int = 24654,
    email: str = "merchant@example.com",
    *,
    owner_id: int = 24654,
    owner_email: str = "merchant@example.com",
    secret: str = CLIENT_SECRET,
    aud: str = CLIENT_ID,
    iss: str = "bc",
    sub: str | None = None,
    issued_at: int | None = None,
    lifetime: int = 86400,
    locale: str = "en-US",
) -> str:
    now = int(time.time()) if issued_at is None else issued_at
    claims = {
        "aud": aud,
        "iss": iss,
        "iat": now,
        "nbf": now - 5,
        "exp": now + lifetime,
        "jti": str(uuid.uuid4()),
        "sub": sub if sub is not None else f"stores/{store_hash}",
        "user": {"id": user_id, "email": email, "locale": locale},
        "owner": {"id": owner_id, "email": owner_email},
        "url": "/",
        "channel_id": None,
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InsecureKeyLengthWarning)
        return jwt.encode(claims, secret, algorithm="HS256")


def legacy_payload(
    store_hash: str,
    user_id: int = 24654,
    *,
    secret: str = CLIENT_SECRET,
    timestamp: float | None = None,
) -> str:
    data = {
        "user": {"id": user_id, "email": "merchant@example.com"},
        "owner": {"id": 24654, "email": "merchant@example.com"},
        "context": f"stores/{store_hash}",
        "store_hash": store_hash,
        "timestamp": time.time() if timestamp is None else timestamp,
    }
    raw = json.dumps(data).encode()
    signature = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest().encode()
    return base64.b64encode(raw).decode() + "." + base64.b64encode(signature).decode()


def token_response(store_hash: str, token: str = "xxxxalphanumstringxxxx", user_id: int = 24654):
    return {
        "access_token": token,
        "scope": "store_v2_products store_v2_orders store_v2_content",
        "user": {
            "id": user_id,
            "username": "merchant@example.com",
            "email": "merchant@example.com",
        },
        "context": f"stores/{store_hash}",
        "account_uuid": "12345678-90ab-cdef-1234-567890abcdef",
    }


def expected_token_request(store_hash: str, code: str, scope: str) -> dict:
    return {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "code": code,
        "context": f"stores/{store_hash}",
        "scope": scope,
        "grant_type": "authorization_code",
        "redirect_uri": APP_URL + "/bigcommerce/auth",
    }


REGISTRATION_PATHS = ("/v3/hooks", "/v3/content/scripts")


@dataclass
class FakeStore:
    """One store's hooks and scripts as V3 lists them for this app's client id, and its
    catalogue (empty unless products are added to `catalogue`)."""

    store_hash: str
    hooks: list[dict] = field(default_factory=list)
    scripts: list[dict] = field(default_factory=list)
    requests: list[tuple[str, str, dict | None]] = field(default_factory=list)
    fail_hooks_with: int | None = None
    # The next N writes are answered 429, as when other apps spent the store's shared quota.
    rate_limit_writes: int = 0
    rate_limit_reset_ms: int = 1500
    page_size: int | None = None
    catalogue: fake_catalogue.FakeStore = field(init=False)
    _next_id: int = 22561593

    def __post_init__(self) -> None:
        self.catalogue = fake_catalogue.FakeStore(self.store_hash, token="")

    def install(self, rsps: responses.RequestsMock) -> FakeStore:
        base = re.escape(API.format(store_hash=self.store_hash))
        for method in ("GET", "POST", "PUT", "DELETE"):
            rsps.add_callback(method, re.compile(base + r"/v[23]/.*"), callback=self._handle)
        return self

    def _handle(self, request):
        path = request.path_url.split("?")[0].split(f"/stores/{self.store_hash}", 1)[1]
        body = json.loads(request.body) if request.body else None
        self.requests.append((request.method, path, body))
        if request.method != "GET" and self.rate_limit_writes > 0:
            self.rate_limit_writes -= 1
            headers = {
                **RATE_HEADERS,
                "X-Rate-Limit-Requests-Left": "0",
                "X-Rate-Limit-Time-Reset-Ms": str(self.rate_limit_reset_ms),
            }
            return 429, headers, json.dumps({"status": 429, "title": "Too many requests"})
        if path.startswith("/v3/hooks"):
            if self.fail_hooks_with:
                return self._reply(
                    self.fail_hooks_with,
                    {"status": self.fail_hooks_with, "title": "JSON data is missing or invalid"},
                )
            return self._hooks(request, path, body)
        if path.startswith("/v3/content/scripts"):
            return self._scripts(request, path, body)
        status, answer = self.catalogue.handle(
            request.method, path, parse_qs(urlsplit(request.url).query), body
        )
        return self._reply(status, answer)

    def _reply(self, status: int, payload: dict | None):
        return status, dict(RATE_HEADERS), json.dumps(payload) if payload is not None else ""

    def _page(self, items: list[dict], request) -> dict:
        query = (
            dict(p.split("=", 1) for p in request.url.split("?", 1)[1].split("&"))
            if "?" in request.url
            else {}
        )
        size = self.page_size or int(query.get("limit", 50))
        page = int(query.get("page", 1))
        chunk = items[(page - 1) * size : page * size]
        total_pages = max(1, -(-len(items) // size))
        return {
            "data": chunk,
            "meta": {
                "pagination": {
                    "total": len(items),
                    "count": len(chunk),
                    "per_page": size,
                    "current_page": page,
                    "total_pages": total_pages,
                    "links": {"current": f"?page={page}&limit={size}"},
                }
            },
        }

    def _hooks(self, request, path, body):
        if request.method == "GET" and path == "/v3/hooks":
            return self._reply(200, self._page(self.hooks, request))
        if request.method == "POST":
            self._next_id += 1
            now = int(time.time())
            hook = {
                "id": self._next_id,
                "client_id": CLIENT_ID,
                "store_hash": self.store_hash,
                "created_at": now,
                "updated_at": now,
                **body,
            }
            self.hooks.append(hook)
            return self._reply(200, {"data": hook, "meta": {}})
        hook_id = int(path.rsplit("/", 1)[1])
        hook = next(h for h in self.hooks if h["id"] == hook_id)
        if request.method == "PUT":
            hook.update(body)
        return self._reply(200, {"data": hook, "meta": {}})

    def _scripts(self, request, path, body):
        if request.method == "GET" and path == "/v3/content/scripts":
            return self._reply(200, self._page(self.scripts, request))
        if request.method == "POST":
            script = {
                "uuid": str(uuid.uuid4()),
                "date_created": "2026-11-23T10:00:00Z",
                "date_modified": "2026-11-23T10:00:00Z",
                "api_client_id": CLIENT_ID,
                "channel_id": 1,
                **body,
            }
            self.scripts.append(script)
            return self._reply(200, {"data": script, "meta": {}})
        script_uuid = path.rsplit("/", 1)[1]
        script = next(s for s in self.scripts if s["uuid"] == script_uuid)
        if request.method == "DELETE":
            self.scripts.remove(script)
            return self._reply(204, None)
        script.update(body)
        return self._reply(200, {"data": script, "meta": {}})

    def writes(self) -> list[tuple[str, str, dict | None]]:
        return [r for r in self.requests if r[0] != "GET"]

    def registration_requests(self) -> list[tuple[str, str, dict | None]]:
        """Requests to the store's hooks and scripts, leaving out catalogue reads and badges."""
        return [r for r in self.requests if r[1].startswith(REGISTRATION_PATHS)]


HOOK_SCOPES = (
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


def expected_hook_body(scope: str, secret: str) -> dict:
    return {
        "scope": scope,
        "destination": APP_URL + "/webhooks/bigcommerce",
        "is_active": True,
        "headers": {"X-Backorder-Secret": secret},
    }


def expected_script_body(store_hash: str, client_id: str | None = "bc-client-id") -> dict:
    """The script as the app registers it (with the app's client id, as tests configure it)."""
    query = f"store={store_hash}" + (f"&client_id={client_id}" if client_id else "")
    return {
        "name": "Backorder Badges",
        "description": "Shows each variant's stock, backorder and ship-by date on product pages.",
        "kind": "src",
        "src": f"{APP_URL}/static/badge-widget-bc.js?{query}",
        "load_method": "async",
        "location": "footer",
        "visibility": "storefront",
        "consent_category": "functional",
        "auto_uninstall": True,
        "enabled": True,
    }


def assert_no_cookie(response) -> None:
    """Safari drops third-party cookies in the control-panel iframe: the app sets none."""
    assert response.headers.getlist("Set-Cookie") == []
