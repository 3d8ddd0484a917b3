"""Backorder Badges: the Flask app. `create_app()` only wires things together."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


def create_app(env: Mapping[str, str] | None = None) -> Flask:
    """Build the app from environment variables (or `env`, which tests pass instead)."""
    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(ROOT / "instance"),
    )
    register_settings(app, env)
    register_url_converters(app)
    register_extensions(app)
    register_blueprints(app)
    register_commands(app)
    register_error_handlers(app)
    register_input_checks(app)
    skip_rate_limiter_on_webhooks(app)
    register_fronts(app)
    return app


def register_settings(app: Flask, env: Mapping[str, str] | None) -> None:
    from plugin.services.tokens import TokenVault
    from plugin.settings import Settings

    settings = Settings.from_env(env, instance_path=app.instance_path)
    if settings.database_url.startswith("sqlite:///") and ":memory:" not in settings.database_url:
        Path(settings.database_url.removeprefix("sqlite:///")).parent.mkdir(
            parents=True, exist_ok=True
        )
    app.extensions["settings"] = settings
    app.extensions["token_vault"] = TokenVault(settings.token_encryption_keys)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.app_env == "test",
        MAX_CONTENT_LENGTH=5 * 1024 * 1024,
        SESSION_COOKIE_SECURE=settings.is_production,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
    )
    if settings.trusted_proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    if not settings.is_production:
        logging.getLogger("plugin").setLevel(logging.INFO)


def register_url_converters(app: Flask) -> None:
    """Ids in URLs stay within what the database stores: a huge one is a 404, not a 500."""
    from werkzeug.routing import IntegerConverter

    class StoredInt(IntegerConverter):
        def __init__(self, url_map, *args, **kwargs):
            kwargs.setdefault("max", 2**31 - 1)
            super().__init__(url_map, *args, **kwargs)

    app.url_map.converters["int"] = StoredInt


def register_extensions(app: Flask) -> None:
    from plugin import i18n
    from plugin.extensions import db, rate_limits, redis_connection, shared_cache

    i18n.init_app(app)
    db.init_app(app)
    redis_connection.init_app(app)
    shared_cache.init_app(app)
    rate_limits.init_app(app)


def register_blueprints(app: Flask) -> None:
    from plugin.blueprints import (
        bigcommerce,
        customer_orders,
        desk,
        health,
        notify,
        sandbox,
        shopify_admin,
        shopify_install,
        storefront,
        webhooks,
    )

    app.register_blueprint(health.bp)
    app.register_blueprint(storefront.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(sandbox.bp)
    app.register_blueprint(shopify_install.bp)
    app.register_blueprint(shopify_admin.bp)
    app.register_blueprint(bigcommerce.bp)
    app.register_blueprint(desk.bp)
    app.register_blueprint(customer_orders.bp)
    app.register_blueprint(notify.bp)
    app.register_blueprint(notify.proxy_bp)


def register_commands(app: Flask) -> None:
    from plugin.commands import register

    register(app)


def register_fronts(app: Flask) -> None:
    """The two hottest requests are answered before Flask is entered, with the views' own
    code: the badge API's cached answers (plugin/blueprints/storefront_cached.py) and platform
    deliveries (plugin/blueprints/webhooks_front.py). PostgreSQL only."""
    if app.extensions["settings"].database_url.startswith("sqlite"):
        return
    from plugin.blueprints.storefront_cached import CachedBadgeAnswers
    from plugin.blueprints.webhooks_front import WebhookFront

    app.wsgi_app = WebhookFront(app, CachedBadgeAnswers(app, app.wsgi_app))


def register_error_handlers(app: Flask) -> None:
    from plugin.blueprints.health import json_errors

    json_errors(app)


# Routes anyone can call (storefront, app proxy, webhooks, customer links, install callbacks,
# health): a NUL in their input is refused before any of it reaches the database. The merchant's
# admin pages check their own fields and answer with a message next to the field.
PUBLIC_BLUEPRINTS = frozenset(
    {"health", "storefront", "notify", "notify_proxy", "customer_orders", "shopify_install"}
)


def register_input_checks(app: Flask) -> None:
    from flask import abort, request

    def _refuse_nul():
        blueprint = request.blueprint
        if blueprint != "webhooks" and blueprint not in PUBLIC_BLUEPRINTS:
            return
        if "\x00" in request.path or b"%00" in request.query_string:
            abort(400, description="The request contains a NUL character.")
        if blueprint == "webhooks" or request.method in ("GET", "HEAD", "OPTIONS"):
            return  # a webhook's raw body is only ever stored as bytes
        body = request.get_data(cache=True)
        encoded = b"%00" if request.mimetype == "application/x-www-form-urlencoded" else b"\\u0000"
        if b"\x00" in body or encoded in body.lower():
            abort(400, description="The request contains a NUL character.")

    app.before_request(_refuse_nul)


# Public endpoints with no rate limit and no cookie: the storefront badge API, which every
# product page view calls (browser- and CDN-cached, answered from the app's own cache).
UNLIMITED_ENDPOINTS = frozenset({"storefront.badges"})
NO_SESSION_PATHS = ("/webhooks/", "/storefront/v1/badges")


def skip_rate_limiter_on_webhooks(app: Flask) -> None:
    """The webhook endpoints have no rate limit (a platform's deliveries are signed, and
    refusing one only makes it retry), nor has the badge API, so flask-limiter's per-request
    hooks (a quarter of the ingest's own CPU) are skipped there, and so is opening a cookie
    session. Every other route keeps both."""
    from functools import partial

    from flask import request

    from plugin.extensions import rate_limits

    limiter = rate_limits.limiter

    def is_limiters(hook) -> bool:
        owner = hook.args[0] if isinstance(hook, partial) and hook.args else None
        return getattr(hook, "__self__", None) is limiter or owner is limiter

    def unlimited() -> bool:
        return request.blueprint == "webhooks" or request.endpoint in UNLIMITED_ENDPOINTS

    def before(hook):
        def unless_unlimited():
            if not unlimited():
                return hook()
            return None

        return unless_unlimited

    def after(hook):
        def unless_unlimited(response):
            return hook(response) if not unlimited() else response

        return unless_unlimited

    for hooks, wrap in ((app.before_request_funcs, before), (app.after_request_funcs, after)):
        found = hooks.get(None, [])
        hooks[None] = [wrap(h) if is_limiters(h) else h for h in found]
    app.session_interface = _no_session_for_webhooks()


def _no_session_for_webhooks():
    from flask.sessions import SecureCookieSessionInterface

    class NoSessionForWebhooks(SecureCookieSessionInterface):
        """A platform's delivery carries no cookie and the endpoint keeps no session: it gets
        Flask's null session instead of building a signing serializer on every request."""

        def open_session(self, app, request):
            # Opened before the URL is matched, so known by its path (the webhooks blueprint's).
            if request.path.startswith(NO_SESSION_PATHS):
                return self.make_null_session(app)
            return super().open_session(app, request)

    return NoSessionForWebhooks()
