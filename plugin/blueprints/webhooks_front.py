"""Platform deliveries answered in front of Flask.

A platform's peak (a flash sale, a bulk import) is thousands of deliveries a minute, and each
went through Flask's request machinery (a request context, URL matching, the app's
before-request and teardown hooks, a Response), which cost about as much CPU as storing the
delivery. This WSGI layer gives a delivery the view's own `answer()` (verify, store, commit,
queue, then the status and JSON the view would send) without entering Flask, and hands
everything else to Flask untouched: another path or method, an unknown platform, a path or
query holding a NUL, a body without a length or over the app's limit (Flask answers those
with its 4xx), and a delivery made inside another request. An unexpected error is answered
by Flask's own error handling.

Only with PostgreSQL; on SQLite (the embedded default) every delivery goes through the view.
"""

from __future__ import annotations

import functools
import json

from flask import has_request_context
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import ClientDisconnected
from werkzeug.http import HTTP_STATUS_CODES

from domain.platforms import Platform
from plugin.blueprints.webhooks import Answer, answer

PREFIX = "/webhooks/"
PLATFORMS = frozenset(p.value for p in Platform)


class WebhookFront:
    def __init__(self, app, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self.engine = app.extensions["db_engine"]
        self.sandbox_enabled = app.extensions["settings"].sandbox_enabled
        self.max_length = app.config["MAX_CONTENT_LENGTH"]

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") != "POST" or not path.startswith(PREFIX):
            return self.wsgi_app(environ, start_response)
        platform = path[len(PREFIX) :]
        length = self._length(environ)
        if (
            platform not in PLATFORMS
            or length is None
            or "%00" in environ.get("QUERY_STRING", "")
            # A delivery made inside another request (the sandbox store delivering to the app
            # in-process): Flask gives it a request of its own, and so a session of its own.
            or has_request_context()
        ):
            return self.wsgi_app(environ, start_response)
        body = environ["wsgi.input"].read(length) if length else b""
        if len(body) != length:  # the sender went away mid-body: as Flask answers it
            given = Answer(400, {"error": ClientDisconnected.description})
        else:
            try:
                # An app context (the app's settings, Redis connection and webhook sources),
                # not a request context.
                with self.app.app_context():
                    given = answer(
                        self.engine, self.sandbox_enabled, platform, body, EnvironHeaders(environ)
                    )
            except Exception as exc:
                return self._flask_error(environ, start_response, exc)
        payload = (json.dumps(given.payload, separators=(",", ":"), sort_keys=True) + "\n").encode()
        status = _status_line(given.status)
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            *given.headers.items(),
        ]
        start_response(status, headers)
        return [payload]

    def _length(self, environ) -> int | None:
        """The body's declared length, if this layer may read it: given, and within the app's
        limit, with no transfer coding."""
        if environ.get("HTTP_TRANSFER_ENCODING"):
            return None
        try:
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:
            return None
        return length if 0 <= length <= self.max_length else None

    def _flask_error(self, environ, start_response, exc: Exception):
        """An error `answer()` does not expect: Flask's error handling answers and logs it, as
        it would have in the view."""
        with self.app.request_context(environ):
            try:
                response = self.app.make_response(self.app.handle_user_exception(exc))
            except Exception as unhandled:
                response = self.app.handle_exception(unhandled)
            return response(environ, start_response)


@functools.cache
def _status_line(code: int) -> str:
    """As werkzeug writes it ("404 NOT FOUND")."""
    return f"{code} {HTTP_STATUS_CODES.get(code, 'UNKNOWN').upper()}"
