"""The public badge API storefront widgets call from shoppers' browsers.

Cross-origin, cacheable, and limited to what a product page shows anyway. Every BigCommerce
product page view asks it, so an answer is cached in the process under the shop's badge
generation (plugin/services/badge_cache.py: read first, bumped by every change committed), and
a browser revalidating with If-None-Match gets a 304.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.http import generate_etag, quote_etag

from plugin.extensions import db, rate_limits
from plugin.services.badge_api import MAX_VARIANTS, badge_answer
from plugin.services.badge_cache import AnswerCache, generation_reader, shop_generation
from plugin.services.badge_labels import language_of

bp = Blueprint("storefront", __name__, url_prefix="/storefront/v1")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
CACHE_SECONDS = 15
# Where `storefront_cached` leaves the (shop id, generation) it read for the view to use.
GENERATION_READ = "backorder.badge_generation"
CACHE_CONTROL = f"public, max-age={CACHE_SECONDS}, stale-while-revalidate={CACHE_SECONDS * 2}"


@rate_limits.limiter.request_filter
def _no_limits_on_badges() -> bool:
    """The badge API has no rate limit: skip the limiter's per-request bookkeeping for it."""
    return request.endpoint == "storefront.badges"


def _error(message: str, status: int):
    response = jsonify(error=message)
    response.status_code = status
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.headers["Cache-Control"] = "no-store"
    return response


@dataclass(frozen=True)
class BadgeQuestion:
    """What a storefront asks the badge API, checked."""

    shop_domain: str
    variant_ids: tuple[str, ...]
    product_id: str | None
    locale: str | None

    def cache_key(self, shop_id: int, generation: int) -> tuple:
        ids = self.variant_ids
        return (shop_id, generation, self.shop_domain, ids, self.product_id, self.locale)


def read_question(args) -> BadgeQuestion | tuple[str, int]:
    """The question in the query string (`args`: a mapping of the first value of each name),
    or the refusal to answer (message, status)."""
    shop_domain = (args.get("shop") or "").strip().lower()
    raw_variants = args.get("variants") or ""
    product_id = (args.get("product") or "").strip() or None
    # The page's language ("fr", "fr-CA"); anything else is ignored, not refused.
    locale = (args.get("locale") or "").strip()
    locale = locale if language_of(locale) else None
    if not shop_domain:
        return "the shop parameter is required", 400
    variant_ids = [v.strip() for v in raw_variants.split(",") if v.strip()]
    if not variant_ids and product_id is None:
        return "give variants=<id,id,...> or product=<id>", 400
    if len(variant_ids) > MAX_VARIANTS:
        return f"at most {MAX_VARIANTS} variants per request", 400
    bad = [v for v in [*variant_ids, product_id or "0"] if not ID_PATTERN.match(v)]
    if bad:
        return f"not a valid id: {bad[0][:64]!r}", 400
    return BadgeQuestion(shop_domain, tuple(variant_ids), product_id, locale)


def answer_headers(etag: str) -> dict[str, str]:
    return {"Access-Control-Allow-Origin": "*", "Cache-Control": CACHE_CONTROL, "ETag": etag}


@bp.get("/badges")
def badges():
    question = read_question(request.args)
    if not isinstance(question, BadgeQuestion):
        return _error(*question)
    # Read by the cached-answer front (`storefront_cached`) for this very request, if it ran.
    found = request.environ.pop(GENERATION_READ, None) or _read_generation(question.shop_domain)
    if found is None:
        return _error("unknown shop", 404)
    shop_id, generation = found
    cache = answer_cache(current_app)
    key = question.cache_key(shop_id, generation)
    entry = cache.get(key)
    if entry is None:
        # Read after the generation: what is cached under it is at least as new as it.
        answer = badge_answer(
            db.session, shop_id, list(question.variant_ids), question.product_id, question.locale
        )
        if not answer:  # uninstalled since its generation was read
            return _error("unknown shop", 404)
        body = current_app.json.dumps(answer, separators=(",", ":")).encode()
        entry = (body, generate_etag(body))
        cache.put(key, entry)
    body, etag = entry
    headers = answer_headers(quote_etag(etag))
    if "If-None-Match" in request.headers and request.if_none_match.contains_weak(etag):
        return Response(status=304, headers=headers)
    return Response(body, mimetype="application/json", headers=headers)


def _read_generation(shop_domain: str) -> tuple[int, int] | None:
    """The shop's id and badge generation, in a statement of its own (autocommit)."""
    reader = generation_reader(current_app.extensions["settings"].database_url)
    if reader is not None:
        return reader.read(shop_domain)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        return shop_generation(conn, shop_domain)


def answer_cache(app) -> AnswerCache:
    """This process's cached answers (body, ETag), shared with `storefront_cached`."""
    cache = app.extensions.get("badge_answers")
    if cache is None:
        cache = app.extensions.setdefault("badge_answers", AnswerCache())
    return cache
