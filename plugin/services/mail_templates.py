"""Composing customer mails from templates: the merchant's own per kind and language, else the
defaults under templates/emails/.

Interface used by the triggers (keep it stable):

    compose(session, shop, kind, locale, context) -> outbox.Composed

`kind` is one of KINDS; `locale` the customer's (or the shop's primary) language; `context`
holds only the documented variables (see VARIABLES). A template that fails to render falls back
to the default and never blocks a send.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from plugin.models import Shop
from plugin.services.outbox import Composed

KINDS = ("backorder_confirmation", "eta_change", "ships_soon", "delay_notice")
# The variables a template may use, per kind (the same for every language).
VARIABLES = {
    "backorder_confirmation": ("shop_name", "customer_name", "order_name", "lines", "cancel_url"),
    "eta_change": (
        "shop_name",
        "customer_name",
        "order_name",
        "product",
        "old_eta",
        "new_eta",
        "reason",
        "cancel_url",
    ),
    "ships_soon": ("shop_name", "customer_name", "order_name", "product", "units", "of_units"),
    "delay_notice": (
        "shop_name",
        "customer_name",
        "order_name",
        "product",
        "promised_eta",
        "new_eta",
        "reason",
        "cancel_url",
        "consent_url",
    ),
}


def compose(session: Session, shop: Shop, kind: str, locale: str, context: dict) -> Composed:
    """Placeholder wording (English, plain) until the template library lands."""
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    subject = (
        f"{shop.name or shop.domain}: {kind.replace('_', ' ')} for {context.get('order_name', '')}"
    )
    text = "\n".join(f"{k}: {v}" for k, v in context.items())
    html = "<html><body><pre>" + text.replace("<", "&lt;") + "</pre></body></html>"
    return Composed(subject=subject, text=text, html=html, locale="en")
