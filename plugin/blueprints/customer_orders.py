"""The public pages behind the links in customer mails: cancel a backordered line or the whole
order, and agree to wait for a delay. No login: the signed, expiring link is the key. Opening
a page changes nothing; only the form's POST acts. A used, expired or altered link says so
and changes nothing.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from plugin.extensions import db
from plugin.models import BackorderLine, Shop
from plugin.services import customer_links as links
from plugin.services.shop_time import format_eta

bp = Blueprint("customer_orders", __name__, url_prefix="/orders")

# Why a link does nothing, as the customer reads it, with the HTTP status.
REFUSALS = {
    "forged": (
        404,
        "This link is not valid",
        "The link may have been copied incompletely. Please use the link in your email as it "
        "is, or reply to the email and the shop will help.",
    ),
    "expired": (
        410,
        "This link has expired",
        "For your security, links in our emails work for 45 days. Nothing was changed. Please "
        "reply to the email and the shop will help.",
    ),
    "used": (
        409,
        "This link has already been used",
        "We already have your answer and nothing more was changed.",
    ),
    "closed": (
        409,
        "This item can no longer be changed here",
        "It has shipped or was cancelled already. Nothing was changed. If you have a question, "
        "reply to the email and the shop will help.",
    ),
    "late": (
        409,
        "This question has been answered or replaced",
        "A newer email about this item has the current choice, or the date to answer has "
        "passed and the shop will cancel and refund it. Nothing was changed.",
    ),
}


def _secret() -> str:
    return current_app.extensions["settings"].secret_key


def _refused(exc: links.LinkRefused):
    status, title, text = REFUSALS[exc.reason]
    shop = db.session.get(Shop, exc.line.shop_id) if exc.line is not None else None
    response = render_template(
        "orders/message.html", title=title, text=text, shop=shop, tone="error"
    )
    return response, status, _no_store()


def _no_store() -> dict[str, str]:
    # A link page names the customer's order: never cached, never sent on as a referrer.
    return {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def _describe(line: BackorderLine) -> dict:
    variant = line.variant
    product = variant.product.title if variant.product else ""
    if variant.title and variant.title != "Default Title":
        product = f"{product} ({variant.title})" if product else variant.title
    order = line.order
    return {"product": product, "order_name": order.name or order.platform_id, "units": line.owed}


@bp.get("/cancel/<token>")
def cancel_form(token: str):
    try:
        line = links.open_cancel_link(db.session, _secret(), token)
    except links.LinkRefused as exc:
        return _refused(exc)
    shop = db.session.get(Shop, line.shop_id)
    others = [_describe(o) for o in links.other_lines(db.session, line)]
    return (
        render_template(
            "orders/cancel.html",
            shop=shop,
            token=token,
            item=_describe(line),
            others=others,
            error=None,
        ),
        200,
        _no_store(),
    )


@bp.post("/cancel/<token>")
def cancel(token: str):
    scope = request.form.get("scope", "")
    if scope not in ("line", "order"):
        try:
            line = links.open_cancel_link(db.session, _secret(), token)
        except links.LinkRefused as exc:
            return _refused(exc)
        shop = db.session.get(Shop, line.shop_id)
        others = [_describe(o) for o in links.other_lines(db.session, line)]
        page = render_template(
            "orders/cancel.html",
            shop=shop,
            token=token,
            item=_describe(line),
            others=others,
            error="Please choose what to cancel.",
        )
        return page, 400, _no_store()
    try:
        request_made = links.request_cancel(db.session, _secret(), token, scope)
    except links.LinkRefused as exc:
        db.session.rollback()
        return _refused(exc)
    line = db.session.get(BackorderLine, request_made.line_id)
    shop = db.session.get(Shop, line.shop_id)
    item = _describe(line)
    db.session.commit()
    from plugin.jobs import queue_mails, queue_platform_cancel

    queue_mails([request_made.merchant_mail_id])
    if request_made.on_platform:
        queue_platform_cancel(request_made.line_id)
    what = f"order {item['order_name']}" if scope == "order" else item["product"]
    text = f"We have your request to cancel {what}. " + (
        "The shop is cancelling it now; you will receive a full refund, including shipping "
        "where it was charged."
        if request_made.on_platform
        else "The shop will cancel it and refund you in full, including shipping where it "
        "was charged."
    )
    return (
        render_template(
            "orders/message.html", title="Cancellation requested", text=text, shop=shop, tone="ok"
        ),
        200,
        _no_store(),
    )


@bp.get("/wait/<token>")
def consent_form(token: str):
    try:
        line, number = links.open_consent_link(db.session, _secret(), token)
    except links.LinkRefused as exc:
        return _refused(exc)
    shop = db.session.get(Shop, line.shop_id)
    notice = next(n for n in links.notices(line) if n.number == number)
    from datetime import date

    revised = format_eta(date.fromisoformat(notice.revised)) if notice.revised else ""
    return (
        render_template(
            "orders/wait.html",
            shop=shop,
            token=token,
            item=_describe(line),
            revised=revised,
            cancel_url=links.cancel_url("", _secret(), line.id),
        ),
        200,
        _no_store(),
    )


@bp.post("/wait/<token>")
def consent(token: str):
    try:
        line = links.consent(db.session, _secret(), token)
    except links.LinkRefused as exc:
        db.session.rollback()
        return _refused(exc)
    shop = db.session.get(Shop, line.shop_id)
    item = _describe(line)
    db.session.commit()
    text = (
        f"Thank you: we will keep {item['product']} on order {item['order_name']} for you. "
        "You can still cancel for a full refund at any time before it ships, with the link in "
        "the email."
    )
    return (
        render_template(
            "orders/message.html", title="Thank you for waiting", text=text, shop=shop, tone="ok"
        ),
        200,
        _no_store(),
    )
