"""Composing customer mails from templates: the merchant's own per kind and language, else the
defaults under templates/emails/.

Interface used by the triggers (keep it stable):

    compose(session, shop, kind, locale, context) -> outbox.Composed

`kind` is one of KINDS; `locale` the customer's (or the shop's primary) language; `context`
holds only the documented variables (see VARIABLES; a missing one is empty). Dates
(`old_eta`, `new_eta`, `promised_eta` and each line's `eta`) are `datetime.date` or None and are
written out in the customer's language; `lines` is a list of dicts with LINE_FIELDS.

A body is written once per language as plain text with a light structure (a blank line starts a
paragraph, "- " starts a list item, `[label](https://...)` is a link); it gives both the text part
and the HTML part, which goes through one shared layout (templates/emails/_layout.html: the shop's
name, the cancel link when the kind has one, the shop's postal address) with its CSS inlined.

A merchant's template runs in a narrowed Jinja2 sandbox (plugin.services.mail_sandbox). One that
fails to render falls back to the default and the returned mail carries a `warning` for the
merchant: it never blocks a send.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta
from functools import cache
from pathlib import Path

import css_inline
from babel import Locale, UnknownLocaleError
from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import MailTemplate, Shop
from plugin.services.mail_sandbox import TemplateRefused, render
from plugin.services.outbox import Composed

log = logging.getLogger(__name__)

# Mails about a customer's order (transactional), then notify-me's.
ORDER_KINDS = ("backorder_confirmation", "eta_change", "ships_soon", "delay_notice")
NOTIFY_KINDS = ("notify_confirm", "back_in_stock")
KINDS = ORDER_KINDS + NOTIFY_KINDS
# Subscription mail (notify-me alerts), as opposed to transactional mail about an order: it
# carries a one-click unsubscribe link (RFC 8058) and says why the shopper gets it.
SUBSCRIPTION_KINDS = ("back_in_stock",)
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
    "notify_confirm": ("shop_name", "product", "confirm_url"),
    "back_in_stock": ("shop_name", "product", "product_url", "units_left", "unsubscribe_url"),
}
# What each entry of `lines` holds.
LINE_FIELDS = ("product", "quantity", "eta")
DATE_VARIABLES = ("old_eta", "new_eta", "promised_eta")
# The languages with default wording, in the order the editor offers them.
LANGUAGES = {"en": "English", "fr": "Français", "de": "Deutsch", "es": "Español"}
KIND_LABELS = {
    "backorder_confirmation": "Backorder confirmation",
    "eta_change": "ETA change",
    "ships_soon": "Ships soon",
    "delay_notice": "Delay notice (Mail Order Rule)",
    "notify_confirm": "Notify me: confirm the address",
    "back_in_stock": "Notify me: back in stock",
}
MAX_SUBJECT = 200
EMAILS = Path(__file__).resolve().parents[2] / "templates" / "emails"

# The layout's own words, per language.
LAYOUT_WORDS = {
    "en": {
        "cancel_intro": "Changed your mind? You can cancel for a full refund, free of charge:",
        "cancel_link": "Cancel this item or the order",
        "consent_intro": "Happy to wait for the new date? Please tell us:",
        "consent_link": "Yes, I'll wait",
        "why": "You are receiving this email because you ordered from {shop}.",
        "why_notify": (
            "You are receiving this email because you asked {shop} to tell you when an item "
            "is back in stock."
        ),
        "why_confirm": "You are receiving this email because this address was entered at {shop}.",
        "unsubscribe": "Unsubscribe",
    },
    "fr": {
        "cancel_intro": (
            "Vous avez changé d'avis ? Vous pouvez annuler gratuitement, "
            "avec un remboursement intégral :"
        ),
        "cancel_link": "Annuler cet article ou la commande",
        "consent_intro": "Vous acceptez d'attendre la nouvelle date ? Dites-le-nous :",
        "consent_link": "Oui, j'attendrai",
        "why": "Vous recevez cet e-mail car vous avez passé commande chez {shop}.",
        "why_notify": (
            "Vous recevez cet e-mail car vous avez demandé à {shop} de vous prévenir du retour "
            "d'un article."
        ),
        "why_confirm": "Vous recevez cet e-mail car cette adresse a été saisie chez {shop}.",
        "unsubscribe": "Se désinscrire",
    },
    "de": {
        "cancel_intro": (
            "Sie haben es sich anders überlegt? Sie können kostenlos stornieren "
            "und erhalten den vollen Betrag zurück:"
        ),
        "cancel_link": "Diesen Artikel oder die Bestellung stornieren",
        "consent_intro": "Sie warten gern auf den neuen Termin? Bitte sagen Sie es uns:",
        "consent_link": "Ja, ich warte",
        "why": "Sie erhalten diese E-Mail, weil Sie bei {shop} bestellt haben.",
        "why_notify": (
            "Sie erhalten diese E-Mail, weil Sie {shop} gebeten haben, Sie zu benachrichtigen, "
            "wenn ein Artikel wieder vorrätig ist."
        ),
        "why_confirm": (
            "Sie erhalten diese E-Mail, weil diese Adresse bei {shop} eingegeben wurde."
        ),
        "unsubscribe": "Abmelden",
    },
    "es": {
        "cancel_intro": (
            "¿Ha cambiado de opinión? Puede cancelar sin coste y recibir el reembolso completo:"
        ),
        "cancel_link": "Cancelar este artículo o el pedido",
        "consent_intro": "¿Acepta esperar a la nueva fecha? Indíquenoslo:",
        "consent_link": "Sí, esperaré",
        "why": "Recibe este correo porque hizo un pedido en {shop}.",
        "why_notify": (
            "Recibe este correo porque pidió a {shop} que le avisara cuando un artículo "
            "volviera a estar disponible."
        ),
        "why_confirm": "Recibe este correo porque esta dirección se introdujo en {shop}.",
        "unsubscribe": "Darse de baja",
    },
}

_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s)]+)\)|(https?://[^\s<>()\[\]]+)")
_BUTTON = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s)]+)\)")
_LAYOUT = Environment(
    loader=FileSystemLoader(str(EMAILS)),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


# --- choosing the language ---------------------------------------------------------------------


def _parse_locale(tag: str | None) -> Locale | None:
    if not tag or len(tag) > 35:  # no locale tag is longer; anything else is not one
        return None
    try:
        return Locale.parse(tag.strip().replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def choose_locale(*candidates: str | None) -> tuple[str, Locale]:
    """The first candidate whose language has wording (fr-CA → fr), else English.

    Returns the language ("fr") and the full locale for dates (fr_CA writes dates its own way).
    """
    for tag in candidates:
        parsed = _parse_locale(tag)
        if parsed is not None and parsed.language in LANGUAGES:
            return parsed.language, parsed
    return "en", Locale("en")


# --- templates ---------------------------------------------------------------------------------


@cache
def default_template(kind: str, language: str) -> tuple[str, str]:
    """(subject, body) of the default wording; templates/emails/<language>/<kind>.txt starts
    with a "Subject: ..." line, then a blank line, then the body."""
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    raw = (EMAILS / language / f"{kind}.txt").read_text(encoding="utf-8")
    head, _, body = raw.partition("\n\n")
    if not head.startswith("Subject:"):
        raise ValueError(f"{language}/{kind}.txt must start with a 'Subject:' line")
    return head.removeprefix("Subject:").strip(), body


def merchant_template(session: Session, shop: Shop, kind: str, language: str):
    return session.scalar(
        select(MailTemplate).where(
            MailTemplate.shop_id == shop.id,
            MailTemplate.kind == kind,
            MailTemplate.locale == language,
        )
    )


# --- rendering ---------------------------------------------------------------------------------


def _date(value, locale: Locale):
    if isinstance(value, datetime):
        value = value.date()
    if isinstance(value, date):
        return format_date(value, format="long", locale=locale)
    return value


def template_context(kind: str, context: dict, locale: Locale) -> dict:
    """Only the kind's variables (missing ones empty), dates written out for `locale`."""
    values: dict[str, object] = {}
    for name in VARIABLES[kind]:
        value = context.get(name)
        if name in DATE_VARIABLES:
            value = _date(value, locale)
        elif name == "lines":
            value = [
                {
                    field: _date(line.get(field), locale) if field == "eta" else line.get(field)
                    for field in LINE_FIELDS
                }
                for line in (value or [])
            ]
        values[name] = value
    return values


def _inline(escaped: str) -> str:
    def link(match: re.Match) -> str:
        if match.group(2):
            return f'<a href="{match.group(2)}">{match.group(1)}</a>'
        url = match.group(3).rstrip(".,;:!?")
        return f'<a href="{url}">{url}</a>{match.group(3)[len(url) :]}'

    return _LINK.sub(link, escaped)


def _flush(out: list[str], paragraph: list[str], items: list[str]) -> None:
    if paragraph:
        out.append("<p>" + "<br>\n".join(paragraph) + "</p>")
        paragraph.clear()
    if items:
        out.append("<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>")
        items.clear()


def body_html(escaped: str) -> Markup:
    """The light structure as HTML: paragraphs, "- " lists, links and one-link buttons.
    `escaped` is already HTML-escaped (every character of it is text)."""
    out: list[str] = []
    for block in re.split(r"\n[ \t]*\n", escaped.replace("\r\n", "\n").strip()):
        lines = [line.strip() for line in block.split("\n") if line.strip()]
        if len(lines) == 1 and _BUTTON.fullmatch(lines[0]):
            button = _inline(lines[0]).replace("<a ", '<a class="button" ', 1)
            out.append(f'<p class="action">{button}</p>')
            continue
        paragraph: list[str] = []
        items: list[str] = []
        for line in lines:
            if line.startswith(("- ", "* ", "• ")):
                if paragraph:
                    _flush(out, paragraph, items)
                items.append(_inline(line[2:].strip()))
            else:
                if items:
                    _flush(out, paragraph, items)
                paragraph.append(_inline(line))
        _flush(out, paragraph, items)
    # Safe: built only from escaped text and the tags above.
    return Markup("\n".join(out))  # noqa: S704


def body_text(text: str) -> str:
    text = _BUTTON.sub(lambda m: f"{m.group(1)}: {m.group(2)}", text.replace("\r\n", "\n"))
    text = "\n".join(line.rstrip() for line in text.split("\n"))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def render_parts(kind: str, subject: str, body: str, values: dict) -> tuple[str, str, Markup]:
    """(subject, text body, HTML body) of one template, or TemplateRefused."""
    subject_out = render(subject, values, html=False, line_fields=LINE_FIELDS)
    subject_out = " ".join(subject_out.split())
    if not subject_out:
        raise TemplateRefused("The subject is empty once rendered.")
    if len(subject_out) > MAX_SUBJECT:
        raise TemplateRefused(f"Keep the subject to {MAX_SUBJECT} characters or fewer.")
    text = body_text(render(body, values, html=False, line_fields=LINE_FIELDS))
    if not text:
        raise TemplateRefused("The body is empty once rendered.")
    html = body_html(render(body, values, html=True, line_fields=LINE_FIELDS))
    return subject_out, text, html


def _layout(
    shop: Shop, kind: str, language: str, values: dict, subject: str, text: str, html: Markup
) -> Composed:
    words = LAYOUT_WORDS[language]
    shop_name = str(values.get("shop_name") or shop.name or shop.domain)
    postal = (getattr(shop.settings, "postal_address", None) or "").strip()
    postal_lines = [line.strip() for line in postal.splitlines() if line.strip()]
    # The consent and cancel links are always in the mail, even if the wording leaves them out.
    consent_url = values.get("consent_url") or ""
    cancel_url = values.get("cancel_url") or ""
    consent_url = "" if consent_url and consent_url in text else consent_url
    cancel_url = "" if cancel_url and cancel_url in text else cancel_url
    why_key = {"back_in_stock": "why_notify", "notify_confirm": "why_confirm"}.get(kind, "why")
    why = words[why_key].format(shop=shop_name)
    unsubscribe_url = values.get("unsubscribe_url") or ""

    text_parts = [text]
    if consent_url:
        text_parts.append(f"{words['consent_intro']}\n{words['consent_link']}: {consent_url}")
    if cancel_url:
        text_parts.append(f"{words['cancel_intro']}\n{cancel_url}")
    footer = [shop_name, *postal_lines, why]
    if unsubscribe_url:
        footer.append(f"{words['unsubscribe']}: {unsubscribe_url}")
    text_parts.append("-- \n" + "\n".join(footer))
    html_page = _LAYOUT.get_template("_layout.html").render(
        lang=language,
        subject=subject,
        shop_name=shop_name,
        body=html,
        consent_url=consent_url,
        cancel_url=cancel_url,
        words=words,
        why=why,
        postal_lines=postal_lines,
        unsubscribe_url=unsubscribe_url,
    )
    return Composed(
        subject=subject,
        text="\n\n".join(text_parts) + "\n",
        html=css_inline.inline(html_page),
        locale=language,
    )


def _render_default(shop: Shop, kind: str, language: str, values: dict) -> Composed:
    subject, body = default_template(kind, language)
    try:
        parts = render_parts(kind, subject, body, values)
    except TemplateRefused:  # never expected: the defaults are tested in every language
        log.exception("default %s template (%s) failed", kind, language)
        fallback = f"{values.get('shop_name') or ''} {values.get('order_name') or ''}".strip()
        parts = (fallback or kind, fallback or kind, Markup("<p>%s</p>") % (fallback or kind))
    return _layout(shop, kind, language, values, *parts)


def compose(
    session: Session,
    shop: Shop,
    kind: str,
    locale: str,
    context: dict,
    templates: dict | None = None,
) -> Composed:
    """The mail in the customer's language (`locale`, else the shop's, else English): the
    merchant's template for that kind and language if it renders, the default otherwise.
    `templates` (a dict the caller keeps) spares a batch one template lookup per mail."""
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}")
    language, babel_locale = choose_locale(locale, shop.locale, "en")
    values = template_context(kind, context, babel_locale)
    if not values.get("shop_name"):
        values["shop_name"] = shop.name or shop.domain
    if templates is None:
        own = merchant_template(session, shop, kind, language)
    else:
        if (kind, language) not in templates:
            templates[(kind, language)] = merchant_template(session, shop, kind, language)
        own = templates[(kind, language)]
    if own is not None:
        try:
            parts = render_parts(kind, own.subject, own.body, values)
        except TemplateRefused as exc:
            warning = (
                f"Your {KIND_LABELS[kind]} template ({LANGUAGES[language]}) could not be used, "
                f"so the default wording was sent: {exc}"
            )
            log.warning("shop %s: %s", shop.id, warning)
            mail = _render_default(shop, kind, language, values)
            return Composed(mail.subject, mail.text, mail.html, mail.locale, warning=warning)
        return _layout(shop, kind, language, values, *parts)
    return _render_default(shop, kind, language, values)


# --- preview -----------------------------------------------------------------------------------


def sample_context(shop: Shop, kind: str, today: date | None = None) -> dict:
    """Sample data for the editor's preview (and its check on save)."""
    today = today or date.today()  # noqa: DTZ011 - only the distance between dates matters
    sample = {
        "shop_name": shop.name or shop.domain,
        "customer_name": "Alex Martin",
        "order_name": "#1001",
        "product": "Linen shirt (M / Blue)",
        "lines": [
            {"product": "Linen shirt (M / Blue)", "quantity": 2, "eta": today + timedelta(14)},
            {"product": "Canvas tote", "quantity": 1, "eta": None},
        ],
        "old_eta": today + timedelta(7),
        "new_eta": today + timedelta(21),
        "promised_eta": today - timedelta(1),
        "reason": "Our supplier's shipment was delayed at the port.",
        "units": 1,
        "of_units": 2,
        "cancel_url": "https://example.com/orders/cancel/sample",
        "consent_url": "https://example.com/orders/wait/sample",
        "confirm_url": "https://example.com/notify/confirm/sample",
        "product_url": "https://example.com/products/linen-shirt?variant=1",
        "units_left": 3,
        "unsubscribe_url": "https://example.com/notify/unsubscribe/sample",
    }
    return {name: sample[name] for name in VARIABLES[kind]}


def preview(shop: Shop, kind: str, language: str, subject: str, body: str) -> Composed:
    """The mail as the customer would see it with sample data, or TemplateRefused."""
    language, babel_locale = choose_locale(language)
    values = template_context(kind, sample_context(shop, kind), babel_locale)
    return _layout(shop, kind, language, values, *render_parts(kind, subject, body, values))
