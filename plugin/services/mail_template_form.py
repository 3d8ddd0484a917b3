"""The merchant's mail template editor: load, preview, check and save one kind in one language.

A template is saved only if it renders, with full sample data and with the optional values
empty; otherwise the message is shown next to the subject or the body and nothing changes.
Restoring the default deletes the merchant's row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from babel.numbers import format_decimal
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import MailTemplate, Shop
from plugin.services import admin_text
from plugin.services.admin_text import N_, _
from plugin.services.mail_sandbox import MAX_SOURCE, TemplateRefused, render
from plugin.services.mail_templates import (
    KINDS,
    LANGUAGES,
    LINE_FIELDS,
    MAX_SUBJECT,
    choose_locale,
    default_template,
    merchant_template,
    preview,
    sample_context,
    template_context,
)
from plugin.services.outbox import Composed

# What each variable holds, for the editor's help (each a message id the editor translates;
# the lines' one holds template code, so the editor translates its words alone).
VARIABLE_HELP = {
    "shop_name": N_("your store's name"),
    "customer_name": N_("the customer's name (may be empty)"),
    "order_name": N_("the order number, like #1001"),
    "lines": "the backordered lines: {% for line in lines %}{{ line.product }}, "
    "{{ line.quantity }}, {{ line.eta }}{% endfor %}",
    "product": N_("the product and variant"),
    "old_eta": N_("the previous date (may be empty)"),
    "new_eta": N_("the new date (may be empty when none is known)"),
    "promised_eta": N_("the date first promised (empty when none was stated)"),
    "reason": N_("your reason, if you gave one (may be empty)"),
    "units": N_("units now allocated"),
    "of_units": N_("units ordered on the line"),
    "cancel_url": N_("the customer's cancel link (also added below every mail about an open line)"),
    "consent_url": N_('the "I\'ll wait" link (added below the mail when consent is needed)'),
}
# The editor's tabs translate mail_templates.KIND_LABELS; their message ids are marked here
# (tests/test_admin_locale_more.py checks the two agree).
KIND_LABEL_IDS = (
    N_("Backorder confirmation"),
    N_("ETA change"),
    N_("Ships soon"),
    N_("Delay notice (Mail Order Rule)"),
    N_("Notify me: confirm the address"),
    N_("Notify me: back in stock"),
)
OPTIONAL = {"customer_name", "reason", "old_eta", "new_eta", "promised_eta", "consent_url"}


@dataclass
class TemplateEdit:
    kind: str
    language: str
    subject: str
    body: str
    custom: bool = False  # the merchant's own wording is saved for this kind and language
    errors: dict[str, str] = field(default_factory=dict)
    preview: Composed | None = None
    saved: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


def _kind_and_language(kind: str | None, language: str | None) -> tuple[str, str]:
    kind = kind if kind in KINDS else KINDS[0]
    language = language if language in LANGUAGES else "en"
    return kind, language


def load(session: Session, shop: Shop, kind: str | None, language: str | None) -> TemplateEdit:
    """The wording in use (the merchant's, else the default), with its preview, and a warning
    if the saved wording no longer renders."""
    kind, language = _kind_and_language(kind, language)
    own = merchant_template(session, shop, kind, language)
    if own is not None:
        edit = TemplateEdit(kind, language, own.subject, own.body, custom=True)
    else:
        edit = TemplateEdit(kind, language, *default_template(kind, language))
    check(shop, edit)
    return edit


def _sparse(shop: Shop, kind: str) -> dict:
    values = sample_context(shop, kind)
    for name in OPTIONAL & set(values):
        values[name] = None if name.endswith("_eta") else ""
    if "lines" in values:
        values["lines"] = [{**line, "eta": None} for line in values["lines"]]
    return values


def check(shop: Shop, edit: TemplateEdit) -> TemplateEdit:
    """Fill edit.errors (by field) and edit.preview."""
    edit.errors.clear()
    edit.preview = None
    if not edit.subject.strip():
        edit.errors["subject"] = _("A subject is needed.")
    elif len(edit.subject) > MAX_SUBJECT * 2:
        edit.errors["subject"] = _(
            "Keep the subject to %(max)s characters or fewer.", max=MAX_SUBJECT
        )
    if not edit.body.strip():
        edit.errors["body"] = _("The body is empty.")
    elif len(edit.body) > MAX_SOURCE:
        number = admin_text.locale()
        edit.errors["body"] = _(
            "The body is %(length)s characters long; keep it under %(max)s.",
            length=format_decimal(len(edit.body), locale=number),
            max=format_decimal(MAX_SOURCE, locale=number),
        )
    if edit.errors:
        return edit
    _language, locale = choose_locale(edit.language)
    for sample in (sample_context(shop, edit.kind), _sparse(shop, edit.kind)):
        values = template_context(edit.kind, sample, locale)
        for name, source, modes in (
            ("subject", edit.subject, (False,)),
            ("body", edit.body, (False, True)),
        ):
            if name in edit.errors:
                continue
            for html in modes:
                try:
                    render(source, values, html=html, line_fields=LINE_FIELDS)
                except TemplateRefused as exc:
                    edit.errors[name] = str(exc)
                    break
    if not edit.errors:
        try:
            edit.preview = preview(shop, edit.kind, edit.language, edit.subject, edit.body)
        except TemplateRefused as exc:  # e.g. empty once rendered, subject too long
            edit.errors["body" if "body" in str(exc).lower() else "subject"] = str(exc)
    return edit


def submit(session: Session, shop: Shop, form: Mapping[str, str]) -> TemplateEdit:
    """Handle one POST of the editor: action "preview", "save" or "reset" (commits)."""
    kind, language = _kind_and_language(form.get("kind"), form.get("language"))
    action = form.get("action") or "preview"
    own = merchant_template(session, shop, kind, language)
    if action == "reset":
        if own is not None:
            session.delete(own)
            session.commit()
        edit = load(session, shop, kind, language)
        edit.saved = True
        return edit
    edit = TemplateEdit(
        kind,
        language,
        (form.get("subject") or "").replace("\r\n", "\n").strip(),
        (form.get("body") or "").replace("\r\n", "\n"),
        custom=own is not None,
    )
    check(shop, edit)
    if action != "save" or not edit.ok:
        return edit
    if own is None:
        own = MailTemplate(shop_id=shop.id, kind=kind, locale=language, subject="", body="")
        session.add(own)
    own.subject = edit.subject
    own.body = edit.body
    session.commit()
    edit.custom = True
    edit.saved = True
    return edit


def overview(session: Session, shop: Shop) -> dict[tuple[str, str], bool]:
    """(kind, language) -> whether the merchant's own wording is saved."""
    rows = session.execute(
        select(MailTemplate.kind, MailTemplate.locale).where(MailTemplate.shop_id == shop.id)
    )
    return {(kind, language): True for kind, language in rows}
