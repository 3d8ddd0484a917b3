"""Notify-me over HTTP: the storefront forms' endpoints and the links in the mails.

- `/storefront/v1/notify[/form]`: the JSON endpoint for BigCommerce's script, the sandbox and
  headless stores. Cross-origin only from the shop's own storefront origins.
- `/proxy/shopify/notify[/form]`: the same, reached through Shopify's app proxy; the shop comes
  from the signed query, never from the body.
- `/notify/confirm/<token>`, `/notify/unsubscribe/<token>`: the double opt-in and unsubscribe
  links (a GET shows a page, a POST acts; RFC 8058 one-click is a POST).

Every refusal is a 4xx with the shopper's message in their language, and nothing is stored.
"""

from __future__ import annotations

import hashlib
import json
from urllib.parse import parse_qsl

from flask import Blueprint, current_app, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from plugin.extensions import db, rate_limits
from plugin.jobs import queue_due_restocks, queue_mails
from plugin.models import Platform, Shop, SubscriptionStatus, Variant
from plugin.platforms import customer_token_verifier
from plugin.services import notify_me, restock_alerts
from plugin.services.notify_texts import language_of, message
from plugin.services.shops import find_installed_shop_by_domain
from webhooks import shopify_app_proxy

bp = Blueprint("notify", __name__)
proxy_bp = Blueprint("notify_proxy", __name__, url_prefix="/proxy/shopify")

MAX_BODY = 8 * 1024
# The storefront forms a sign-up may come from (kept with its consent record).
FORMS = ("shopify_block", "shopify_embed", "bigcommerce_script", "sandbox", "api")
# Per shopper's address (IP) and per email address. Generous for a person trying sizes and
# colours; tight for a script.
IP_LIMITS = "10 per minute;60 per hour"
ADDRESS_LIMITS = "5 per hour"
FORM_LIMITS = "120 per minute"
LINK_LIMITS = "30 per minute"
FIELD_LIMIT = 512


# --- who is asking -------------------------------------------------------------------------------


def _proxy_request() -> shopify_app_proxy.ProxyRequest | None:
    """The verified app proxy request, or None (cached on the request)."""
    cached = request.environ.get("backorder_badges.proxy")
    if cached is not None:
        return cached or None
    pairs = parse_qsl(request.query_string.decode("utf-8", "replace"), keep_blank_values=True)
    secret = current_app.extensions["settings"].shopify_client_secret
    try:
        verified = shopify_app_proxy.verify(pairs, secret)
    except shopify_app_proxy.ProxyRefused:
        verified = None
    request.environ["backorder_badges.proxy"] = verified or False
    return verified


def shopper_ip() -> str:
    """Behind the app proxy the shopper's address is Shopify's first X-Forwarded-For entry
    (trusted only once the signature checks out); elsewhere the request's own."""
    if request.blueprint == "notify_proxy" and _proxy_request() is not None:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[0].strip()
        if forwarded:
            return forwarded[:64]
    return request.remote_addr or "unknown"


def _body() -> dict:
    """The JSON or form body, at most MAX_BODY bytes; {} if unreadable (the view refuses)."""
    cached = request.environ.get("backorder_badges.notify_body")
    if cached is not None:
        return cached
    request.max_content_length = MAX_BODY
    body: dict = {}
    try:
        if request.is_json:
            parsed = json.loads(request.get_data(cache=True) or b"{}")
            body = parsed if isinstance(parsed, dict) else {}
        else:
            body = request.form.to_dict()
    except (ValueError, UnicodeDecodeError):
        body = {}
    request.environ["backorder_badges.notify_body"] = body
    return body


def address_key() -> str:
    """Per email address (hashed: the limiter's keys never hold an address)."""
    try:
        email = str(_body().get("email") or "").strip().lower()[:FIELD_LIMIT]
    except RequestEntityTooLarge:
        email = ""
    return "address:" + hashlib.sha256(email.encode()).hexdigest()[:32]


def _language() -> str:
    try:
        locale = _body().get("locale") if request.method == "POST" else None
    except RequestEntityTooLarge:
        locale = None
    return language_of(
        str(locale or "")[:35] or request.args.get("locale", "")[:35],
        request.accept_languages.best,
    )


def refuse(code: str, status: int, field: str | None = None):
    response = jsonify(error=code, field=field, message=message(_language(), code))
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return _cors(response)


# --- CORS ---------------------------------------------------------------------------------------


def _origin_allowed(shop: Shop | None) -> str | None:
    origin = request.headers.get("Origin")
    if not origin:
        return None
    own = f"{request.scheme}://{request.host}"
    if origin == own or (shop is not None and origin in (shop.storefront_origins or [])):
        return origin
    return None


def _cors(response, shop: Shop | None = None):
    if request.blueprint != "notify":
        return response
    if shop is None:
        shop = request.environ.get("backorder_badges.shop")
    origin = _origin_allowed(shop)
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "GET, POST"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type"
        response.headers["Access-Control-Max-Age"] = "600"
    response.vary.add("Origin")
    return response


def _shop_from_query() -> Shop | None:
    domain = (request.args.get("shop") or "").strip().lower()
    if not domain or len(domain) > 255 or "\x00" in domain:
        return None
    shop = find_installed_shop_by_domain(db.session, domain)
    request.environ["backorder_badges.shop"] = shop
    return shop


# --- the JSON endpoint (BigCommerce, sandbox, headless) -----------------------------------------


@bp.route("/storefront/v1/notify", methods=["OPTIONS"])
@bp.route("/storefront/v1/notify/form", methods=["OPTIONS"])
def preflight():
    return _cors(current_app.response_class(status=204), _shop_from_query())


@bp.get("/storefront/v1/notify/form")
@rate_limits.limit(FORM_LIMITS, key_func=shopper_ip)
def form():
    shop = _shop_from_query()
    if shop is None:
        return refuse("unknown_shop", 404)
    response = jsonify(notify_me.form_config(shop, request.args.get("locale")))
    response.cache_control.public = True
    response.cache_control.max_age = 60
    return _cors(response, shop)


@bp.post("/storefront/v1/notify")
@rate_limits.limit(IP_LIMITS, key_func=shopper_ip)
@rate_limits.limit(ADDRESS_LIMITS, key_func=address_key)
def sign_up():
    shop = _shop_from_query()
    if shop is None:
        return refuse("unknown_shop", 404)
    if request.headers.get("Origin") and _origin_allowed(shop) is None:
        return refuse("rejected", 403)
    customer_id = customer_email = None
    token = _body().get("customer_jwt")
    if token:
        verified = customer_token_verifier(shop)(str(token))
        if verified is None:
            return refuse("invalid_customer", 401)
        customer_id, customer_email = verified
    return _take(shop, customer_id, customer_email, default_form="api")


# --- the same through Shopify's app proxy -------------------------------------------------------


def _proxied_shop() -> Shop | None:
    proxied = _proxy_request()
    if proxied is None:
        return None
    shop = find_installed_shop_by_domain(db.session, proxied.shop)
    if shop is not None and shop.platform != Platform.SHOPIFY:
        return None
    return shop


@proxy_bp.get("/notify/form")
@rate_limits.limit(FORM_LIMITS, key_func=shopper_ip)
def proxy_form():
    if _proxy_request() is None:
        return refuse("rejected", 401)
    shop = _proxied_shop()
    if shop is None:
        return refuse("unknown_shop", 404)
    response = jsonify(notify_me.form_config(shop, request.args.get("locale")))
    response.headers["Cache-Control"] = "no-store"
    return response


@proxy_bp.post("/notify")
@rate_limits.limit(IP_LIMITS, key_func=shopper_ip)
@rate_limits.limit(ADDRESS_LIMITS, key_func=address_key)
def proxy_sign_up():
    proxied = _proxy_request()
    if proxied is None:
        return refuse("rejected", 401)
    shop = _proxied_shop()
    if shop is None:
        return refuse("unknown_shop", 404)
    return _take(shop, proxied.logged_in_customer_id or None, None, default_form="shopify_block")


def _take(shop: Shop, customer_id: str | None, customer_email: str | None, default_form: str):
    body = _body()
    if not body:
        return refuse("bad_request", 400)
    if body.get("website"):  # the honeypot: people never see it, bots fill it in
        return refuse("rejected", 400)
    # The shopper ticked the consent box (the text they agreed to is the server's own).
    if body.get("consent") not in (True, "true", "on", "1", 1):
        return refuse("consent_required", 422, "consent")
    fields = {}
    for name in ("variant", "email", "locale", "consent_version", "form", "page"):
        value = body.get(name)
        if value is not None and not isinstance(value, str | int):
            return refuse("bad_request", 400)
        fields[name] = "" if value is None else str(value)
        if len(fields[name]) > (2048 if name == "page" else FIELD_LIMIT):
            return refuse("too_large", 413)
    if fields["form"] and fields["form"] not in FORMS:
        return refuse("bad_request", 400)
    if not fields["variant"] or not fields["variant"].isascii() or len(fields["variant"]) > 64:
        return refuse("unknown_variant", 404)
    sign_up = notify_me.SignUp(
        variant=fields["variant"],
        email=fields["email"],
        locale=fields["locale"] or None,
        consent_version=fields["consent_version"] or None,
        form=fields["form"] or default_form,
        page_url=fields["page"] or request.headers.get("Referer"),
        ip=shopper_ip(),
        user_agent=request.headers.get("User-Agent"),
        customer_id=customer_id,
        customer_email=customer_email,
    )
    settings = current_app.extensions["settings"]
    try:
        result = notify_me.subscribe(db.session, shop, sign_up, app_url=settings.app_url)
    except notify_me.SignUpRefused as refused:
        db.session.rollback()
        return refuse(refused.code, refused.status, refused.field)
    db.session.commit()
    queue_mails([result.mail_id])
    response = jsonify(status=result.status, message=message(result.language, result.status))
    response.status_code = 200 if result.status == "already_subscribed" else 201
    response.headers["Cache-Control"] = "no-store"
    return _cors(response, shop)


@bp.errorhandler(RequestEntityTooLarge)
@proxy_bp.errorhandler(RequestEntityTooLarge)
def _too_large(_exc):
    return refuse("too_large", 413)


@bp.errorhandler(429)
@proxy_bp.errorhandler(429)
def _rate_limited(exc: HTTPException):
    if not request.path.startswith(("/storefront/", "/proxy/")):
        return render_template("notify/page.html", **_page_words(None, "rate_limited")), 429
    return refuse("rate_limited", 429)


# --- the links in the mails ---------------------------------------------------------------------


def _page_words(subscription, state: str) -> dict:
    from plugin.services.notify_texts import PAGE_WORDS

    language = subscription.locale if subscription is not None else _language()
    words = PAGE_WORDS.get(language, PAGE_WORDS["en"])
    shop = product = None
    if subscription is not None:
        shop = db.session.get(Shop, subscription.shop_id)
        variant = db.session.get(Variant, subscription.variant_id)
        product = notify_me.variant_name(variant) if variant else ""
    return {
        "state": state,
        "words": words,
        "language": language,
        "shop": shop,
        "product": product,
        "subscription": subscription,
    }


@bp.get("/notify/confirm/<token>")
@rate_limits.limit(LINK_LIMITS, key_func=shopper_ip)
def confirm_page(token: str):
    subscription = notify_me.by_token(db.session, token)
    if subscription is None:
        return render_template("notify/page.html", **_page_words(None, "unknown")), 404
    state = "confirm" if subscription.status == SubscriptionStatus.PENDING else "confirmed"
    if subscription.status == SubscriptionStatus.UNSUBSCRIBED:
        state = "unsubscribed"
    return render_template("notify/page.html", **_page_words(subscription, state))


@bp.post("/notify/confirm/<token>")
@rate_limits.limit(LINK_LIMITS, key_func=shopper_ip)
def confirm(token: str):
    subscription = notify_me.confirm(db.session, token)
    if subscription is None:
        return render_template("notify/page.html", **_page_words(None, "unknown")), 404
    if subscription.status == SubscriptionStatus.ACTIVE:
        restock_alerts.after_confirmation(db.session, subscription)
    db.session.commit()
    queue_due_restocks(subscription.shop_id)
    state = "unsubscribed" if subscription.status == SubscriptionStatus.UNSUBSCRIBED else None
    return render_template("notify/page.html", **_page_words(subscription, state or "confirmed"))


@bp.get("/notify/unsubscribe/<token>")
@rate_limits.limit(LINK_LIMITS, key_func=shopper_ip)
def unsubscribe_page(token: str):
    subscription = notify_me.by_token(db.session, token)
    if subscription is None:
        return render_template("notify/page.html", **_page_words(None, "unknown")), 404
    state = "unsubscribed" if subscription.status == SubscriptionStatus.UNSUBSCRIBED else "ask"
    return render_template("notify/page.html", **_page_words(subscription, state))


@bp.post("/notify/unsubscribe/<token>")
def unsubscribe(token: str):
    """RFC 8058 one-click (body `List-Unsubscribe=One-Click`, from the mail client) or the
    page's button: either way at once, with no login. Not rate-limited: an unsubscribe must
    always work."""
    subscription = notify_me.unsubscribe(db.session, token)
    if subscription is None:
        return render_template("notify/page.html", **_page_words(None, "unknown")), 404
    db.session.commit()
    if request.form.get("List-Unsubscribe") == "One-Click":
        return current_app.response_class("Unsubscribed.\n", mimetype="text/plain")
    return render_template("notify/page.html", **_page_words(subscription, "unsubscribed"))
