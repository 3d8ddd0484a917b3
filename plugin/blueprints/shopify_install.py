"""The authorization-code install, for shops that don't come through managed install.

`/shopify/install` checks Shopify's signed query and sends the merchant to approve the app,
with a random `state` kept in a signed, short-lived cookie; `/shopify/auth/callback` checks the
query again, the state against that cookie, then trades the code for an expiring offline
token. A `shop` that is not a `*.myshopify.com` domain is refused before anything else happens:
no redirect and no HTTP call is ever built from it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
from functools import cache

from flask import Blueprint, current_app, redirect, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from connectors.shopify import oauth
from plugin import ROOT
from plugin.blueprints.shopify_admin import add_frame_ancestors, error_page
from plugin.extensions import db
from plugin.jobs import start_sync
from plugin.services.shopify_install import store_grant

bp = Blueprint("shopify_install", __name__, url_prefix="/shopify")
bp.after_request(add_frame_ancestors)

STATE_COOKIE = "shopify_oauth_state"
STATE_MAX_AGE = 600  # seconds the merchant has to approve the app
CALLBACK_PATH = "/shopify/auth/callback"
ADMIN_HOST = re.compile(r"^admin\.shopify\.com/store/[a-zA-Z0-9][a-zA-Z0-9-]*\Z")


@cache
def shopify_manifest() -> dict:
    """The Shopify part of app-manifest.json: one list of scopes for the app and its config."""
    with open(ROOT / "app-manifest.json", encoding="utf-8") as handle:
        return json.load(handle)["platforms"]["shopify"]


def requested_scopes() -> str:
    return ",".join(shopify_manifest()["scopes"])


def _state_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="shopify-oauth-state")


def _check_signed_query():
    """None if the query is Shopify's and fresh, else the refusal to send. Shop first."""
    shop = request.args.get("shop")
    if not oauth.is_shop_domain(shop):
        return error_page(400, "Unknown shop", "The shop must be a myshopify.com domain.")
    secret = current_app.extensions["settings"].shopify_client_secret
    if not oauth.query_hmac_valid(request.args.items(multi=True), secret):
        return error_page(
            401, "Request not from Shopify", "The request's signature (hmac) does not match."
        )
    if not oauth.timestamp_fresh(request.args.get("timestamp")):
        return error_page(
            400, "Link expired", "This install link is too old. Start again from Shopify."
        )
    return None


@bp.get("/install")
def install():
    refused = _check_signed_query()
    if refused:
        return refused
    settings = current_app.extensions["settings"]
    shop = request.args["shop"]
    state = secrets.token_urlsafe(32)
    target = oauth.authorize_url(
        shop,
        settings.shopify_client_id,
        requested_scopes(),
        settings.app_url + CALLBACK_PATH,
        state,
    )
    response = redirect(target)
    response.set_cookie(
        STATE_COOKIE,
        _state_serializer().dumps({"state": state, "shop": shop}),
        max_age=STATE_MAX_AGE,
        path=CALLBACK_PATH,
        secure=True,
        httponly=True,
        samesite="Lax",
    )
    return response


@bp.get("/auth/callback")
def auth_callback():
    refused = _check_signed_query()
    if refused:
        return refused
    settings = current_app.extensions["settings"]
    shop = request.args["shop"]
    try:
        kept = _state_serializer().loads(
            request.cookies.get(STATE_COOKIE, ""), max_age=STATE_MAX_AGE
        )
    except BadSignature:  # also SignatureExpired
        kept = None
    given = request.args.get("state", "")
    if (
        not isinstance(kept, dict)
        or kept.get("shop") != shop
        or not hmac.compare_digest(str(kept.get("state", "")).encode(), given.encode())
    ):
        return error_page(
            403,
            "Install not confirmed",
            "This approval does not match an install started from this browser, or it took "
            "more than ten minutes. Start the install again from Shopify.",
        )
    code = request.args.get("code", "")
    if not code:
        return error_page(400, "No authorization code", "Shopify sent no authorization code.")
    try:
        grant = oauth.exchange_code(
            shop, code, settings.shopify_client_id, settings.shopify_client_secret
        )
    except oauth.TokenRequestRefused as exc:
        current_app.logger.warning("code exchange refused for %s: %s", shop, exc)
        return error_page(
            400,
            "Shopify refused the approval",
            f"Shopify did not accept the authorization code ({exc.error}). "
            "Start the install again from Shopify.",
        )
    except oauth.TokenEndpointUnavailable as exc:
        current_app.logger.warning("code exchange failed for %s: %s", shop, exc)
        return error_page(502, "Shopify is not answering", "Try the install again soon.")
    installed = store_grant(db.session, shop, grant)
    db.session.commit()
    start_sync(installed.id)
    response = redirect(admin_app_url(shop, request.args.get("host")))
    response.delete_cookie(
        STATE_COOKIE, path=CALLBACK_PATH, secure=True, httponly=True, samesite="Lax"
    )
    return response


def admin_app_url(shop: str, host: str | None) -> str:
    """The app inside the merchant's admin; `host` is used only if it names Shopify's admin."""
    client_id = current_app.extensions["settings"].shopify_client_id
    if host:
        decoded = _b64(host)
        if ADMIN_HOST.match(decoded) or decoded == f"{shop}/admin":
            return f"https://{decoded}/apps/{client_id}"
    return f"https://{shop}/admin/apps/{client_id}"


def _b64(value: str) -> str:
    padded = value + "=" * (-len(value) % 4)
    for decode in (base64.b64decode, base64.urlsafe_b64decode):
        try:
            return decode(padded.encode()).decode()
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
    return ""
