"""The public badge API storefront widgets call from shoppers' browsers.

Cross-origin, cacheable, and limited to what a product page shows anyway.
"""

from __future__ import annotations

import re

from flask import Blueprint, jsonify, request

from plugin.extensions import db
from plugin.services.badge_api import MAX_VARIANTS, badges_for
from plugin.services.badge_labels import language_of
from plugin.services.shops import find_installed_shop_by_domain

bp = Blueprint("storefront", __name__, url_prefix="/storefront/v1")
ID_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
CACHE_SECONDS = 15


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

    shop = find_installed_shop_by_domain(db.session, shop_domain)
    if shop is None:
        return _error("unknown shop", 404)

    response = jsonify(
        shop=shop.domain,
        enabled=shop.settings.enabled,
        variants=badges_for(db.session, shop, variant_ids, product_id, locale),
    )
    response.headers["Access-Control-Allow-Origin"] = "*"
    response.cache_control.public = True
    response.cache_control.max_age = CACHE_SECONDS
    response.headers["Cache-Control"] += f", stale-while-revalidate={CACHE_SECONDS * 2}"
    response.add_etag()
    return response.make_conditional(request)
