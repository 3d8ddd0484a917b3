"""Health check and JSON errors for API paths."""

from __future__ import annotations

from flask import Blueprint, Flask, jsonify, redirect, request, url_for
from sqlalchemy import text
from werkzeug.exceptions import HTTPException

from plugin.extensions import db, redis_connection

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


@bp.get("/")
def index():
    return redirect(url_for("sandbox.admin"))


def json_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        if request.path.startswith(JSON_PREFIXES):
            response = jsonify(error=exc.description or exc.name)
            response.status_code = exc.code or 500
            return response
        return exc
