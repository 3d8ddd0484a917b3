"""Validating and saving a store's backorder settings, all or nothing.

Any invalid field refuses the whole submission: the merchant sees each message next to its field
with what they typed kept, and the settings already saved stay as they were.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from connectors.base import can_backorder_automatically
from plugin.badge_engine import MAX_LEAD_DAYS
from plugin.models import Shop, StoreSettings, Variant
from plugin.services import badge_labels, customer_mails, notify_settings
from plugin.services.admin_text import N_, _
from plugin.services.badging import refresh_shop_badges
from plugin.services.catalog import location_ids, location_names, recompute_total
from plugin.services.shop_time import shop_today

COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
LABEL_FIELDS = {"label_in_stock": 80, "label_backorder": 120, "label_out_of_stock": 80}
# The placeholders the badge engine fills in each label (badge_engine.render_label fills {eta}
# in the backorder label only): any other brace would reach shoppers as typed.
LABEL_PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "label_in_stock": (),
    "label_backorder": ("eta",),
    "label_out_of_stock": (),
}
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
COLOUR_FIELDS = ("color_in_stock", "color_backorder", "color_out_of_stock")
FLAG_FIELDS = (
    "enabled",
    "auto_backorder",
    "business_days",
    "email_backorder_confirmation",
    "email_eta_changed",
    "email_eta_earlier",
    "email_ships_soon",
    "email_delay_notice",
    "email_back_in_stock",
    "customer_cancel_on_platform",
)
MAX_QUIET_MINUTES = 24 * 60
MAX_POSTAL_ADDRESS = 500
MAX_LIMIT = 1_000_000
MAX_CLOSED_DATES = 366
MAX_ETA_REASON = 500
# A fixed ETA or a closed date further ahead than this is a typo (or a probe), not a plan.
MAX_DAYS_AHEAD = 3 * 366
MAX_EMAIL = 254  # the longest address SMTP carries (RFC 5321)
MAX_TIMEZONE = 64  # the column; every IANA zone name is far shorter
# A sign and at most 9 digits: int() alone takes "1_000", non-ASCII digits and numbers with
# thousands of digits; anything longer is refused before it is converted.
WHOLE = re.compile(r"[+-]?[0-9]{1,9}")


# Why "Backorder automatically" is not offered where checkout would still refuse past zero.
AUTO_BACKORDER_UNAVAILABLE = N_(
    "Your store's own backorders are turned off, so its checkout refuses orders once stock "
    "reaches zero, whatever the app shows. Turn on backorders in your store's inventory "
    "settings; once the app sees them (within the hour) it can backorder automatically."
)


def auto_backorder_refusal(shop: Shop) -> str | None:
    """Why the app cannot backorder automatically for this store, or None when it can."""
    if can_backorder_automatically(shop.platform.value, shop.native_backorders):
        return None
    return _(AUTO_BACKORDER_UNAVAILABLE)


@dataclass
class SettingsSubmission:
    values: dict[str, object] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    # Why the merchant moved ETAs (optional): told to the waiting customers, not kept here.
    eta_reason: str = ""
    # Customer mails about moved ETAs, queued by `save` once the change committed.
    mail_ids: list[int] = field(default_factory=list)
    # Notify-me texts the merchant changed: {(language, field): text}, "" for the default.
    notify_texts: dict[tuple[str, str], str] = field(default_factory=dict)
    # Badge labels in the store's other languages: {(language, kind): text}, "" for the default.
    badge_labels: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.errors


def _int(raw: str, name: str, errors: dict[str, str], low: int, high: int, label: str):
    raw = str(raw).strip()
    if raw == "":
        return None
    if not WHOLE.fullmatch(raw):
        too_big = re.fullmatch(r"[+-]?[0-9]+", raw) is not None
        errors[name] = (
            _("%(label)s must be between %(low)s and %(high)s.", label=label, low=low, high=high)
            if too_big
            else _("%(label)s must be a whole number.", label=label)
        )
        return None
    value = int(raw)
    if not low <= value <= high:
        errors[name] = _(
            "%(label)s must be between %(low)s and %(high)s.", label=label, low=low, high=high
        )
        return None
    return value


def label_error(name: str, value: str) -> str | None:
    """Why a badge label cannot be saved, or None: only its documented placeholders, no stray
    braces."""
    allowed = LABEL_PLACEHOLDERS[name]
    named = " and ".join("{" + p + "}" for p in allowed)
    unknown = [p for p in PLACEHOLDER.findall(value) if p not in allowed]
    if unknown:
        typed = "{" + unknown[0][:30] + "}"
        if not allowed:
            return _("This label takes no placeholders; remove %(typed)s.", typed=typed)
        return _(
            "%(named)s is the only placeholder here; remove %(typed)s.", named=named, typed=typed
        )
    rest = value
    for placeholder in allowed:
        rest = rest.replace("{" + placeholder + "}", "")
    if "{" in rest or "}" in rest:
        if not allowed:
            return _("This label takes no placeholders; remove the braces.")
        return _("Use braces only in %(named)s.", named=named)
    return None


def _date_ahead(raw: str, today: date, what: str) -> tuple[date | None, str | None]:
    """An ISO date no further than MAX_DAYS_AHEAD from today, or why not."""
    try:
        value = date.fromisoformat(raw)
    except ValueError:
        return None, None
    latest = today + timedelta(days=MAX_DAYS_AHEAD)
    if value > latest:
        return None, _(
            "%(what)s must be by %(latest)s (three years ahead).",
            what=what,
            latest=latest.isoformat(),
        )
    return value, None


def _chosen_locations(form: Mapping[str, str]) -> list[str]:
    if hasattr(form, "getlist"):
        return [v for v in form.getlist("location") if v]
    raw = form.get("location") or ""
    return [v.strip() for v in str(raw).split(",") if v.strip()]


def parse(
    form: Mapping[str, str],
    today: date,
    locations: list[str] | None = None,
) -> SettingsSubmission:
    """`locations` are the stock locations the shop has; the merchant picks which count.

    Per-variant ETAs, lead times and limits are not settings: the Variants page saves them
    (`variant_table`), so a settings save never reads nor clears them, whatever keys it has."""
    sub = SettingsSubmission()
    errors = sub.errors
    # Unticking every box sends no "location" at all, so the form marks that it showed them;
    # a client that never showed the choice (the JSON API, say) leaves it as it was.
    if locations and (form.get("locations_shown") or form.get("location")):
        chosen = _chosen_locations(form)
        unknown = [loc for loc in chosen if loc not in locations]
        if unknown:
            errors["location"] = _("Unknown location %(location)r.", location=unknown[0][:40])
        elif not chosen:
            errors["location"] = _("Choose at least one location whose stock counts.")
        # Every location chosen is stored as "all", so new locations count too.
        sub.values["location_ids"] = None if set(chosen) == set(locations) else sorted(chosen)
    for name in FLAG_FIELDS:
        sub.values[name] = form.get(name) in ("on", "1", "true", "yes")

    for name, max_len in LABEL_FIELDS.items():
        value = (form.get(name) or "").strip()
        if not value:
            errors[name] = _("A label is needed; shoppers would otherwise see an empty badge.")
        elif len(value) > max_len:
            errors[name] = _("Keep it to %(max)s characters or fewer.", max=max_len)
        elif problem := label_error(name, value):
            errors[name] = problem
        sub.values[name] = value
    if "label_backorder" not in errors and "{eta}" not in str(sub.values["label_backorder"]):
        errors["label_backorder"] = _("Include {eta} where the ship-by date should appear.")
    sub.badge_labels = badge_labels.parse(form, errors)

    for name in COLOUR_FIELDS:
        value = (form.get(name) or "").strip()
        if not COLOUR.match(value):
            errors[name] = _("Use a colour like #1a7f37.")
        sub.values[name] = value

    lead = _int(
        form.get("default_lead_days", ""),
        "default_lead_days",
        errors,
        0,
        MAX_LEAD_DAYS,
        _("Lead time"),
    )
    if lead is None and "default_lead_days" not in errors:
        errors["default_lead_days"] = _("A default lead time in days is needed.")
    sub.values["default_lead_days"] = lead

    if "timezone" in form:  # stores whose platform reports their zone do not show the field
        tz = str(form.get("timezone") or "").strip()
        try:
            if not tz or len(tz) > MAX_TIMEZONE:
                raise ValueError(tz)
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            errors["timezone"] = _(
                "Use a time zone name such as Europe/London or America/New_York."
            )
        sub.values["timezone"] = tz

    if "closed_dates" in form:  # a client that never showed the field leaves it as it was
        closed: list[str] = []
        for raw in str(form.get("closed_dates") or "").replace(",", "\n").splitlines():
            raw = raw.strip()
            if not raw:
                continue
            day, too_far = _date_ahead(raw, today, _("The closed date %(date)s", date=raw))
            if day is None:
                errors["closed_dates"] = too_far or _(
                    "%(typed)r is not a date like 2026-12-24.", typed=raw[:20]
                )
                break
            closed.append(day.isoformat())
        if len(closed) > MAX_CLOSED_DATES:
            errors["closed_dates"] = _("At most %(max)s dates.", max=MAX_CLOSED_DATES)
        sub.values["closed_dates"] = sorted(set(closed))

    reason = " ".join(str(form.get("eta_reason") or "").split())
    if len(reason) > MAX_ETA_REASON:
        errors["eta_reason"] = _(
            "Keep the reason to %(max)s characters or fewer.", max=MAX_ETA_REASON
        )
    sub.eta_reason = reason

    if "email_quiet_minutes" in form:
        quiet = _int(
            form.get("email_quiet_minutes", ""),
            "email_quiet_minutes",
            errors,
            0,
            MAX_QUIET_MINUTES,
            _("The quiet period"),
        )
        if quiet is not None:
            sub.values["email_quiet_minutes"] = quiet
    if "postal_address" in form:
        address = str(form.get("postal_address") or "").strip()
        if len(address) > MAX_POSTAL_ADDRESS:
            errors["postal_address"] = _(
                "Keep it to %(max)s characters or fewer.", max=MAX_POSTAL_ADDRESS
            )
        sub.values["postal_address"] = address or None

    sub.notify_texts = notify_settings.parse(form, sub.values, errors)

    reply_to = str(form.get("email_reply_to") or "").strip()
    if len(reply_to) > MAX_EMAIL:
        errors["email_reply_to"] = _("Keep it to %(max)s characters or fewer.", max=MAX_EMAIL)
    elif reply_to and not EMAIL.match(reply_to):
        errors["email_reply_to"] = _("That is not an email address.")
    sub.values["email_reply_to"] = reply_to or None

    return sub


def passed_etas(shop: Shop, variants: list[Variant]) -> set[int]:
    """Variants whose fixed ETA has passed in the shop's zone: flagged for the merchant."""
    today = shop_today(shop.timezone)
    return {v.id for v in variants if v.eta_override is not None and v.eta_override < today}


def shop_variants(session: Session, shop: Shop) -> list[Variant]:
    return list(
        session.scalars(select(Variant).where(Variant.shop_id == shop.id).order_by(Variant.id))
    )


def shop_locations(session: Session, shop: Shop) -> list[str]:
    """Every location the store has reported stock for."""
    return list(location_ids(session, shop.id))


def save(session: Session, shop: Shop, form: Mapping[str, str]) -> tuple[SettingsSubmission, int]:
    """The one way every settings page saves: validate, commit, then schedule the push.

    All or nothing: with any error nothing is kept (the session is rolled back) and the
    submission carries the messages. Returns the submission and how many badges changed.
    """
    storefront_before = badge_labels.storefront_config(shop)
    submission, changed = submit(session, shop, form)
    if not submission.ok:
        session.rollback()
        return submission, 0
    storefront_changed = badge_labels.storefront_config(shop) != storefront_before
    session.commit()
    from plugin.jobs import queue_mails, schedule_push
    from plugin.services.storefront_config import schedule_storefront_push

    if storefront_changed and shop.is_active:
        schedule_storefront_push(shop.id)

    if changed and shop.is_active:
        schedule_push(shop.id)
    queue_mails(submission.mail_ids)
    return submission, changed


def submit(session: Session, shop: Shop, form: Mapping[str, str]) -> tuple[SettingsSubmission, int]:
    """Validate; only if every field is valid, apply and re-decide the shop's badges (not
    committed: `save` is the caller)."""
    variants = shop_variants(session, shop)
    submission = parse(form, shop_today(shop.timezone), shop_locations(session, shop))
    refusal = auto_backorder_refusal(shop)
    if refusal and submission.values.get("auto_backorder"):
        submission.errors["auto_backorder"] = refusal
    if not submission.ok:
        return submission, 0
    etas_before = customer_mails.badge_etas(session, shop)
    apply(session, shop, submission)
    session.flush()
    for variant in variants:
        recompute_total(session, shop, variant)
    changed = refresh_shop_badges(session, shop, cause="settings")
    session.flush()
    moves = customer_mails.eta_moves(etas_before, customer_mails.badge_etas(session, shop))
    if moves and shop.is_active:
        submission.mail_ids = customer_mails.after_eta_moves(
            session, shop, moves, reason=submission.eta_reason, links=customer_mails.app_links()
        )
    return submission, changed


def submitted_values(form: Mapping[str, str]) -> dict[str, object]:
    """What the merchant typed, to show again next to the errors (checkbox lists included)."""
    values: dict[str, object] = {k: v for k, v in form.items() if k != "token"}
    values["location"] = _chosen_locations(form)
    values["badge_label_sections"] = badge_labels.submitted_sections(form)
    return values


def apply(session: Session, shop: Shop, sub: SettingsSubmission) -> None:
    if not sub.ok:
        raise ValueError("refusing to save settings with errors")
    settings: StoreSettings = shop.settings
    for name, value in sub.values.items():
        if name == "timezone":
            shop.timezone = str(value)
        else:
            setattr(settings, name, value)
    notify_settings.apply_texts(settings, sub.notify_texts)
    badge_labels.apply(shop, sub.badge_labels)


def form_values(shop: Shop) -> dict[str, object]:
    """The saved settings as the form shows them (from the shop's rows, never a read of its
    whole catalogue: the page costs the same with 50 variants or 50,000)."""
    s = shop.settings
    values: dict[str, object] = {name: "on" if getattr(s, name) else "" for name in FLAG_FIELDS}
    for name in (*LABEL_FIELDS, *COLOUR_FIELDS):
        values[name] = getattr(s, name)
    values["default_lead_days"] = str(s.default_lead_days)
    values["closed_dates"] = "\n".join(s.closed_dates or [])
    values["timezone"] = shop.timezone
    values["email_reply_to"] = s.email_reply_to or ""
    values["email_quiet_minutes"] = str(s.email_quiet_minutes)
    values["postal_address"] = s.postal_address or ""
    values.update(notify_settings.form_values(s))
    values.update(badge_labels.form_values(shop))
    # Why the store cannot backorder automatically ("" when it can): the page then hides it.
    values["auto_backorder_unavailable"] = auto_backorder_refusal(shop) or ""
    session = object_session(shop)
    # The platform's names for the locations offered (the page falls back to the id).
    values["location_names"] = location_names(session, shop.id) if session is not None else {}
    chosen = s.location_ids
    offered = list(location_ids(session, shop.id)) if session is not None else []
    values["location"] = list(chosen) if chosen else offered
    # Every location the store has reported stock for: the page offers these.
    values["location_options"] = offered
    return values
