"""Health check, the public landing page at `/`, and JSON errors for API paths."""

from __future__ import annotations

import contextlib
import logging
import re
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from plugin.extensions import db, redis_connection

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)
JSON_PREFIXES = ("/storefront/", "/webhooks/", "/api/")


@bp.get("/healthz")
def healthz():
    checks = {}
    db.session.execute(text("SELECT 1"))
    checks["database"] = "ok"
    client = redis_connection.client
    checks["queue"] = "ok" if client is None or client.ping() else "down"
    return jsonify(status="ok", checks=checks)


# What a merchant may type for their shop: "my-store", "my-store.myshopify.com", or the admin
# URL they have open (https://my-store.myshopify.com/admin). Refused otherwise, never fetched.
STORE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,59}")
BIGCOMMERCE_MARKETPLACE = "https://www.bigcommerce.com/apps/"


@bp.get("/")
def index():
    """Merchants who find the app's address see what it does and how to install it; a
    developer's machine (the sandbox on, outside production) goes straight to the sandbox."""
    settings = current_app.extensions["settings"]
    if settings.sandbox_enabled and not settings.is_production:
        return redirect(url_for("sandbox.admin"))
    return _landing()


def _landing(shop: str = "", error: str | None = None, status: int = 200):
    return (
        render_template(
            "landing.html",
            shop=shop,
            error=error,
            bigcommerce_marketplace=BIGCOMMERCE_MARKETPLACE,
        ),
        status,
    )


def store_name(typed: str) -> str | None:
    """The myshopify store name in what the merchant typed, or None."""
    text = typed.strip().lower()
    if "://" in text:
        text = urlsplit(text).hostname or ""
    text = text.split("/", 1)[0].removesuffix(".myshopify.com")
    return text if STORE_NAME.fullmatch(text) else None


@bp.get("/install/shopify")
def install_shopify():
    """The landing page's install form: on to Shopify's own install page for the app, where the
    merchant approves it and Shopify comes back to the app with a signed request.

    (`/shopify/install` itself takes only Shopify's signed query, so a plain form cannot go
    there.)"""
    typed = str(request.args.get("shop") or "")[:200]
    name = store_name(typed)
    if name is None:
        message = (
            "Enter your store's myshopify.com address, like my-store.myshopify.com."
            if typed.strip()
            else "Enter your store's myshopify.com address to install."
        )
        return _landing(typed, message, 400)
    client_id = current_app.extensions["settings"].shopify_client_id
    return redirect(f"https://admin.shopify.com/store/{name}/oauth/install?client_id={client_id}")


# The database restarting or unreachable: what a JSON caller is told (the webhook front's
# `webhooks.answer` says the same, outside Flask's error handling).
UNAVAILABLE = "temporarily unavailable, please retry"
RETRY_LATER = {"Retry-After": "5"}


def note_database_unavailable(exc: OperationalError) -> None:
    log.warning("database unavailable: %s", type(exc.orig).__name__ if exc.orig else exc)


def json_errors(app: Flask) -> None:
    @app.errorhandler(OperationalError)
    def _database_unavailable(exc: OperationalError):
        """PostgreSQL restarting or unreachable: a 503 with Retry-After tells a platform (and a
        browser) to try again, where a 500 says the request itself was wrong. Nothing was
        committed, so a webhook's retry is stored as new."""
        note_database_unavailable(exc)
        with contextlib.suppress(Exception):
            db.session.rollback()
        if request.path.startswith(JSON_PREFIXES):
            response = jsonify(error=UNAVAILABLE)
        else:
            response = current_app.response_class(
                "Temporarily unavailable, please retry in a moment.", mimetype="text/plain"
            )
        response.status_code = 503
        response.headers.update(RETRY_LATER)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if request.path.startswith(JSON_PREFIXES):
            response = jsonify(error=exc.description or exc.name)
            response.status_code = exc.code or 500
            return response
        return exc
