"""Support desk: one variant's page (stock, badge and why, who waits, the timeline) and its
"heal now" button."""

from __future__ import annotations

from flask import redirect, request
from flask_babel import gettext as _
from werkzeug.routing import BuildError

from plugin.blueprints.desk import Desk, DeskRefused, desk_route, render
from plugin.extensions import db
from plugin.services import desk_variant as service
from plugin.services import variant_heal


def _variant_or_404(desk: Desk, variant_id: int):
    variant = service.find_variant(db.session, desk.shop, variant_id)
    if variant is None:
        raise DeskRefused(_("This variant is not in this store."), 404)
    return variant


def _customer_link(desk: Desk):
    """Links to a customer's page (the desk's customer view), when that page exists."""

    def link(email: str | None, anchor: str = "") -> str | None:
        if not email:
            return None
        try:
            return desk.url("customer", email=email) + (f"#{anchor}" if anchor else "")
        except BuildError:
            return None

    return link


@desk_route("/variants/<int:variant_id>")
def variant(desk: Desk, variant_id: int):
    return _page(desk, _variant_or_404(desk, variant_id))


def _page(desk: Desk, found, *, heal_error: str | None = None, status: int = 200):
    page = service.variant_page(db.session, desk.shop, found, request.args.get("before"))
    return render(
        desk,
        "desk/variant.html",
        status,
        page=page,
        customer_link=_customer_link(desk),
        healed=request.args.get("healed"),
        heal_error=heal_error,
    )


@desk_route("/variants/<int:variant_id>/heal", methods=("POST",))
def heal(desk: Desk, variant_id: int):
    from plugin.jobs import queue_due_restocks, queue_mails, schedule_push

    found = _variant_or_404(desk, variant_id)
    try:
        result = variant_heal.heal_variant(db.session, desk.shop, found, desk.staff_user)
    except variant_heal.HealFailed as exc:
        # Nothing half-written: the platform's answer is shown on the page, unchanged.
        db.session.rollback()
        return _page(
            desk, _variant_or_404(desk, variant_id), heal_error=exc.message, status=exc.status
        )
    db.session.commit()
    if result.badges_to_push:
        schedule_push(desk.shop.id)
        queue_due_restocks(desk.shop.id)
    queue_mails(result.mail_ids)
    outcome = "changed" if result.badge_changed or result.lines_changed else "unchanged"
    return redirect(desk.url("variant", variant_id=variant_id, healed=outcome), 303)
