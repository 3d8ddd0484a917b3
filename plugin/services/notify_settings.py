"""The "Notify me" part of the settings form: reading, checking and showing it.

Kept apart from `settings_form` (which calls it) so each stays small. The same rules hold:
every bad value is refused next to its field and nothing is saved. A client that leaves a
field out (a JSON API client, say) leaves it as it was; the HTML form marks with
`notify_shown` that it showed the section, so an unticked box there means off. Each text is
kept per language and field; an empty one means the default wording.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

from plugin.models import Shop, StoreSettings
from plugin.services import notify_policy
from plugin.services.admin_text import N_, _
from plugin.services.notify_texts import DEFAULTS, FIELDS, LANGUAGES

FLAGS = ("notify_enabled", "notify_on_backorder", "notify_show_stock")
TRUE = ("on", "1", "true", "yes")
FALSE = ("off", "0", "false", "no")
DOUBLE_OPT_IN = {"auto": None, "": None, "none": None, "on": True, "off": False}
RATE = ("notify_rate_per_unit", 1, 100, N_("Alerts per unit"))
BATCH = ("notify_batch_minutes", 1, 24 * 60, N_("The batch interval"))
SHOWN = "notify_shown"
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
MULTI_LINE = ("intro", "consent")


def text_key(language: str, field: str) -> str:
    return f"notify_text-{language}-{field}"


TEXT_KEYS = {text_key(lang, field): (lang, field) for lang in LANGUAGES for field in FIELDS}


def _flag(raw: object) -> bool:
    return str(raw or "").strip().lower() in TRUE


def _whole(raw: object, name: str, low: int, high: int, label: str, errors: dict[str, str]):
    text = str(raw if raw is not None else "").strip()
    label = _(label)
    if not text:
        errors[name] = _(
            "%(label)s is needed: a whole number from %(low)s to %(high)s.",
            label=label,
            low=low,
            high=high,
        )
        return None
    # Digits only: int() alone would take "1_000" or non-ASCII digits; a huge number is
    # refused by its length before it is converted.
    if not re.fullmatch(r"[0-9]{1,6}", text):
        errors[name] = _(
            "%(label)s must be a whole number from %(low)s to %(high)s.",
            label=label,
            low=low,
            high=high,
        )
        return None
    value = int(text)
    if not low <= value <= high:
        errors[name] = _(
            "%(label)s must be between %(low)s and %(high)s.", label=label, low=low, high=high
        )
        return None
    return value


def text_error(field: str, value: str) -> str | None:
    """Why a text cannot be saved, or None. {shop} is the only placeholder filled in."""
    limit = FIELDS[field]
    if len(value) > limit:
        return _("Keep it to %(max)s characters or fewer.", max=limit)
    allowed = "\n\r\t" if field in MULTI_LINE else ""
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in value):
        return _("Remove the control characters.")
    others = [name for name in PLACEHOLDER.findall(value) if name != "shop"]
    if others:
        typed = "{" + others[0][:30] + "}"
        return _("{shop} is the only placeholder; remove %(typed)s.", typed=typed)
    if "{" in value.replace("{shop}", "") or "}" in value.replace("{shop}", ""):
        return _("Use braces only in %(named)s.", named="{shop}")
    return None


def parse(form: Mapping[str, object], values: dict[str, object], errors: dict[str, str]):
    """Read the section into `values` (settings columns) and `errors`; returns the text
    changes {(language, field): text}, an empty text meaning the default."""
    shown = bool(form.get(SHOWN))
    for name in FLAGS:
        if shown or name in form:
            values[name] = _flag(form.get(name))
    if "notify_double_opt_in" in form:
        raw = str(form.get("notify_double_opt_in") or "").strip().lower()
        if raw in DOUBLE_OPT_IN:
            values["notify_double_opt_in"] = DOUBLE_OPT_IN[raw]
        elif raw in TRUE or raw in FALSE:
            values["notify_double_opt_in"] = raw in TRUE
        else:
            errors["notify_double_opt_in"] = _("Choose automatic, on or off.")
    for name, low, high, label in (RATE, BATCH):
        if name in form:
            value = _whole(form.get(name), name, low, high, label, errors)
            if value is not None:
                values[name] = value
    changes: dict[tuple[str, str], str] = {}
    for key, (language, field) in TEXT_KEYS.items():
        if key not in form:
            continue
        value = str(form.get(key) or "").strip()
        problem = text_error(field, value)
        if problem:
            errors[key] = problem
        changes[(language, field)] = value
    return changes


def apply_texts(settings: StoreSettings, changes: dict[tuple[str, str], str]) -> None:
    """Merge the changes into the saved texts (a new dict, so the JSON column is rewritten);
    a text equal to the default is not kept, so later default rewordings reach the store."""
    if not changes:
        return
    texts = {
        lang: dict(fields)
        for lang, fields in (settings.notify_texts or {}).items()
        if lang in LANGUAGES and isinstance(fields, dict)
    }
    for (language, field), value in changes.items():
        own = texts.setdefault(language, {})
        if value and value != DEFAULTS[language][field]:
            own[field] = value
        else:
            own.pop(field, None)
    settings.notify_texts = {lang: fields for lang, fields in texts.items() if fields}


def form_values(settings: StoreSettings) -> dict[str, str]:
    """The saved section as the form shows it (and the JSON API returns it)."""
    values = {name: "on" if getattr(settings, name) else "" for name in FLAGS}
    chosen = settings.notify_double_opt_in
    values["notify_double_opt_in"] = "auto" if chosen is None else ("on" if chosen else "off")
    values["notify_rate_per_unit"] = str(settings.notify_rate_per_unit)
    values["notify_batch_minutes"] = str(settings.notify_batch_minutes)
    texts = settings.notify_texts or {}
    for key, (language, field) in TEXT_KEYS.items():
        own = texts.get(language) if isinstance(texts.get(language), dict) else {}
        value = own.get(field)
        values[key] = value if isinstance(value, str) else ""
    return values


def texts_from_json(texts: object) -> tuple[dict[str, str], str | None]:
    """A JSON client's {"fr": {"heading": "..."}} as form fields, or why it cannot be read.
    Languages and fields it leaves out stay as they were; null or "" restores the default."""
    if not isinstance(texts, dict):
        return {}, 'Send notify_texts as an object like {"fr": {"heading": "…"}}.'
    form: dict[str, str] = {}
    for language, fields in texts.items():
        if language not in LANGUAGES:
            return {}, f"Unknown language {str(language)[:20]!r}; use {', '.join(LANGUAGES)}."
        if not isinstance(fields, dict):
            return {}, f"Send the {language} texts as an object of field: text."
        for field, value in fields.items():
            if field not in FIELDS:
                return {}, f"Unknown text {str(field)[:30]!r}; use {', '.join(FIELDS)}."
            if value is not None and not isinstance(value, str):
                return {}, f"The {language} {field} must be text."
            form[text_key(language, field)] = value or ""
    return form, None


FIELD_LABELS = {
    "heading": N_("Heading"),
    "intro": N_("Introduction"),
    "email_label": N_("Label of the email field"),
    "consent": N_("Consent (the shopper ticks it to agree)"),
    "button": N_("Button"),
}


def page_context(shop: Shop) -> dict:
    """What the section needs besides the values: the double opt-in that applies to this
    store now, and the languages and fields with their default wording."""
    return {
        "double_opt_in": notify_policy.view(shop),
        "languages": LANGUAGES,
        "fields": FIELDS,
        "field_labels": {field: _(label) for field, label in FIELD_LABELS.items()},
        "multi_line": MULTI_LINE,
        "defaults": DEFAULTS,
    }
