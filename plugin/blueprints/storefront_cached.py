"""The badge API's cached answers, given in front of Flask.

Every BigCommerce product page view asks `GET /storefront/v1/badges`, and almost every one is
answered from this process's cache. Going through Flask's request machinery for that (a request
context, URL matching, the app's before-request and teardown hooks, a Response object) cost
more CPU than the answer itself. So this WSGI layer answers a GET whose answer is cached, in
the same way the view would (the same checks, the same cache key, headers and 304s), and hands
everything else to Flask untouched: a refusal, an unknown shop, an answer not cached yet, any
other method or path.

Freshness is the view's, unchanged (plugin/services/badge_cache.py): the shop's generation is
read for each request, after it arrived, before the cache is looked at. When this layer hands
a request on after reading it (the answer was not cached), the view uses that read instead of
making another.

Only with PostgreSQL (its coalesced generation reader). On SQLite, the embedded default, every
request goes through the view.
"""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl

from werkzeug.http import parse_etags, quote_etag

from plugin.blueprints.storefront import (
    GENERATION_READ,
    BadgeQuestion,
    answer_cache,
    answer_headers,
    read_question,
)
from plugin.services.badge_cache import generation_reader

log = logging.getLogger(__name__)

PATH = "/storefront/v1/badges"


class CachedBadgeAnswers:
    def __init__(self, app, wsgi_app):
        self.wsgi_app = wsgi_app
        self.app = app
        self.database_url = app.extensions["settings"].database_url

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "GET":
            return self.wsgi_app(environ, start_response)
        answer = self.cached(environ)
        if answer is None:
            return self.wsgi_app(environ, start_response)
        status, headers, body = answer
        start_response(status, headers)
        return [body]

    def cached(self, environ) -> tuple[str, list[tuple[str, str]], bytes] | None:
        query = environ.get("QUERY_STRING", "")
        if "%00" in query:  # refused by the app's input checks, with its own message
            return None
        # As Flask parses a query string (request.args): the first value of each name.
        args: dict[str, str] = {}
        for name, value in parse_qsl(query, keep_blank_values=True, errors="werkzeug.url_quote"):
            args.setdefault(name, value)
        question = read_question(args)
        if not isinstance(question, BadgeQuestion):
            return None
        reader = generation_reader(self.database_url)
        if reader is None:
            return None
        try:
            found = reader.read(question.shop_domain)
        except Exception:  # the view reads again, and answers as the app does (a 503)
            log.debug("generation read failed; handing the request to the view", exc_info=True)
            return None
        if found is None:
            return None
        entry = answer_cache(self.app).get(question.cache_key(*found))
        if entry is None:
            environ[GENERATION_READ] = found
            return None
        body, etag = entry
        headers = answer_headers(quote_etag(etag))
        matches = environ.get("HTTP_IF_NONE_MATCH")
        if matches is not None and parse_etags(matches).contains_weak(etag):
            return "304 NOT MODIFIED", list(headers.items()), b""
        return (
            "200 OK",
            [
                *headers.items(),
                ("Content-Type", "application/json"),
                ("Content-Length", str(len(body))),
            ],
            body,
        )
