"""Platform deliveries are answered in front of Flask (plugin/blueprints/webhooks_front.py):
a platform must get the same status, body and headers as from the view, nothing may be lost
or stored twice, and whatever the front does not take is Flask's, unchanged."""

from __future__ import annotations

import logging
import uuid

import pytest
from sqlalchemy import func, select

from plugin import create_app
from plugin.blueprints.storefront_cached import CachedBadgeAnswers
from plugin.blueprints.webhooks_front import WebhookFront
from plugin.extensions import db
from plugin.models import WebhookEvent
from plugin.services import ingest, sandbox_store
from tests.conftest import base_env
from tests.helpers import FlaskEntered
from webhooks import sandbox as sandbox_webhooks

STOCK = "inventory_levels/update"


def flask_only(app):
    """The same app with its fronts taken off: every request goes through the views."""
    wsgi = app.wsgi_app
    while isinstance(wsgi, WebhookFront | CachedBadgeAnswers):
        wsgi = wsgi.wsgi_app
    app.wsgi_app = wsgi
    return app


def delivery(app, event_id: str | None = None, shop: str = sandbox_store.DEMO_SHOP):
    body, headers = sandbox_webhooks.build_delivery(
        app.extensions["settings"].secret_key,
        shop,
        STOCK,
        {"variant_id": 1, "location_id": "default", "available": 3},
        event_id=event_id or f"front-{uuid.uuid4()}",
    )
    return body, headers


def answered(response):
    headers = {k: v for k, v in response.headers.items() if k != "Content-Length"}
    return response.status_code, response.get_json(), headers


@pytest.fixture
def both(app):
    """(the app with its fronts, the same database's app without them)."""
    plain = flask_only(create_app(base_env(DATABASE_URL=app.extensions["settings"].database_url)))
    sandbox_store.ensure_shop(db.session)
    db.session.commit()
    return app, plain


def test_a_delivery_is_stored_once_and_answered_as_the_view_answers_without_flask(both):
    app, plain = both
    body, headers = delivery(app)
    with FlaskEntered(app) as flask:
        first = app.test_client().post("/webhooks/sandbox", data=body, headers=headers)
    assert flask.count == 0
    by_view = plain.test_client().post("/webhooks/sandbox", data=body, headers=headers)
    status, payload, sent = answered(first)
    assert status == 200 and payload["status"] == "accepted" and payload["duplicate"] is False
    # The platform's retry, answered by the view: the same event, counted as a duplicate.
    assert answered(by_view) == (200, {**payload, "duplicate": True}, sent)
    assert first.data.endswith(b"\n") and first.headers["Content-Type"] == "application/json"
    rows = db.session.scalars(select(WebhookEvent)).all()
    assert len(rows) == 1 and rows[0].deliveries == 2 and rows[0].body == body


@pytest.mark.parametrize(
    "case",
    ["bad signature", "unknown platform", "empty body", "sandbox off", "database refused"],
)
def test_every_refusal_is_the_views(both, case):
    app, plain = both
    body, headers = delivery(app)
    path = "/webhooks/sandbox"
    if case == "bad signature":
        headers = {**headers, sandbox_webhooks.H_HMAC: "0" * 64}
    elif case == "unknown platform":
        path = "/webhooks/woo"
    elif case == "empty body":
        body = b""
    elif case == "sandbox off":
        url = app.extensions["settings"].database_url
        app = create_app(base_env(DATABASE_URL=url, SANDBOX_ENABLED="0"))
        plain = flask_only(create_app(base_env(DATABASE_URL=url, SANDBOX_ENABLED="0")))
    elif case == "database refused":
        body, headers = delivery(app, event_id="nul\x00id")
    front = app.test_client().post(path, data=body, headers=headers)
    view = plain.test_client().post(path, data=body, headers=headers)
    assert front.status_code >= 400
    assert answered(front) == answered(view)
    assert db.session.scalar(select(func.count(WebhookEvent.id))) == 0


def test_an_unexpected_error_is_flasks_500_and_logged(both, monkeypatch, caplog):
    app, plain = both

    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(ingest, "accept", broken)
    for each in (app, plain):  # as in production: a 500, not the exception raised to the test
        monkeypatch.setitem(each.config, "PROPAGATE_EXCEPTIONS", False)
    body, headers = delivery(app)
    with caplog.at_level(logging.ERROR):
        front = app.test_client().post("/webhooks/sandbox", data=body, headers=headers)
    assert front.status_code == 500
    assert "a bug" in caplog.text
    view = plain.test_client().post("/webhooks/sandbox", data=body, headers=headers)
    assert (front.status_code, front.data) == (view.status_code, view.data)


def test_what_the_front_does_not_take_goes_to_flask(both):
    app, _plain = both
    body, headers = delivery(app)
    client = app.test_client()
    asks = [
        ("GET", "/webhooks/sandbox", {}, 405),
        ("POST", "/webhooks/sandbox?x=%00", {"data": body, "headers": headers}, 400),
        ("POST", "/webhooks/nowhere", {"data": body, "headers": headers}, 404),
        ("POST", "/webhooks/sandbox/extra", {"data": body, "headers": headers}, 404),
    ]
    for method, path, kwargs, status in asks:
        with FlaskEntered(app) as flask:
            response = client.open(path, method=method, **kwargs)
        assert response.status_code == status, path
        assert flask.count == 1, path
    with FlaskEntered(app) as flask:  # over the app's 5 MB limit: Flask's 413
        response = client.post(
            "/webhooks/sandbox", data=b"x" * (5 * 1024 * 1024 + 1), headers=headers
        )
    assert response.status_code == 413 and flask.count == 1
    assert db.session.scalar(select(func.count(WebhookEvent.id))) == 0


def test_a_body_cut_short_is_a_400_and_nothing_is_stored(both):
    app, _plain = both
    body, headers = delivery(app)
    environ_overrides = {"CONTENT_LENGTH": str(len(body) + 10)}
    response = app.test_client().post(
        "/webhooks/sandbox", data=body, headers=headers, environ_overrides=environ_overrides
    )
    assert response.status_code == 400 and response.get_json()["error"]
    assert db.session.scalar(select(func.count(WebhookEvent.id))) == 0
