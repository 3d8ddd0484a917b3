"""The public badge API storefront widgets call from shoppers' browsers.

Cross-origin, cacheable, and limited to what a product page shows anyway. Every BigCommerce
product page view asks it, so an answer is cached in the process under the shop's badge
generation (plugin/services/badge_cache.py: read first, bumped by every change committed), and
a browser revalidating with If-None-Match gets a 304.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.http import generate_etag, quote_etag

from plugin.extensions import db, rate_limits
from plugin.services.badge_api import MAX_VARIANTS, badge_answer
from plugin.services.badge_cache import AnswerCache, generation_reader, shop_generation
from plugin.services.badge_labels import language_of

bp = Blueprint("storefront", __name__, url_prefix="/storefront/v1")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
CACHE_SECONDS = 15
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


@bp.get("/badges")
def badges():
    shop_domain = (request.args.get("shop") or "").strip().lower()
    raw_variants = request.args.get("variants") or ""
    product_id = (request.args.get("product") or "").strip() or None
    # The page's language ("fr", "fr-CA"); anything else is ignored, not refused.
    locale = (request.args.get("locale") or "").strip()
    locale = locale if language_of(locale) else None
    if not shop_domain:
        return _error("the shop parameter is required", 400)
    variant_ids = [v.strip() for v in raw_variants.split(",") if v.strip()]
    if not variant_ids and product_id is None:
        return _error("give variants=<id,id,...> or product=<id>", 400)
    if len(variant_ids) > MAX_VARIANTS:
        return _error(f"at most {MAX_VARIANTS} variants per request", 400)
    bad = [v for v in [*variant_ids, product_id or "0"] if not ID_PATTERN.match(v)]
    if bad:
        return _error(f"not a valid id: {bad[0][:64]!r}", 400)

    found = _read_generation(shop_domain)
    if found is None:
        return _error("unknown shop", 404)
    shop_id, generation = found
    cache = _answer_cache()
    key = (shop_id, generation, shop_domain, tuple(variant_ids), product_id, locale)
    entry = cache.get(key)
    if entry is None:
        # Read after the generation: what is cached under it is at least as new as it.
        answer = badge_answer(db.session, shop_id, variant_ids, product_id, locale)
        if not answer:  # uninstalled since its generation was read
            return _error("unknown shop", 404)
        body = current_app.json.dumps(answer, separators=(",", ":")).encode()
        entry = (body, generate_etag(body))
        cache.put(key, entry)
    body, etag = entry
    headers = {
        "Access-Control-Allow-Origin": "*",
        "Cache-Control": CACHE_CONTROL,
        "ETag": quote_etag(etag),
    }
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


def _answer_cache() -> AnswerCache:
    cache = current_app.extensions.get("badge_answers")
    if cache is None:
        cache = current_app.extensions.setdefault("badge_answers", AnswerCache())
    return cache
