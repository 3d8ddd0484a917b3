"""Support desk: find a customer, an order or a variant from one box (the desk's home page)."""

from __future__ import annotations

from flask import request
from werkzeug.routing import BuildError

from plugin.blueprints.desk import Desk, desk_route, render
from plugin.extensions import db
from plugin.services import desk_search


def variant_link(desk: Desk):
    """A link to a variant's desk page, or None while that page does not exist."""

    def link(variant_id: int) -> str | None:
        try:
            return desk.url("variant", variant_id=variant_id)
        except BuildError:
            return None

    return link


@desk_route("")
def home(desk: Desk):
    raw = request.args.get("q", "")
    try:
        results = desk_search.search(db.session, desk.shop, raw)
    except desk_search.SearchRefused as exc:
        return render(desk, "desk/home.html", 400, query=raw[:200], results=None, error=exc.message)
    return render(
        desk,
        "desk/home.html",
        query=results.query,
        results=results,
        error=None,
        variant_link=variant_link(desk),
        limit=desk_search.LIMIT,
    )
