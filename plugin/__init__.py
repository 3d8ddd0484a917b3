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


def register_error_handlers(app: Flask) -> None:
    from plugin.blueprints.health import json_errors

    json_errors(app)
