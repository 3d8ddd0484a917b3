"""Editing the Variants page: saving a row's changes, and bulk edits over a selection or a filter.

Only what changed is written, and only the variants written are re-decided (never the whole
shop: a save must cost the same with 50 variants or 50,000). Each value is checked by the same
rules as the CSV import (`variant_csv`, which takes its bounds from the settings page), with the
message kept per row and field. All or nothing: with any refusal nothing is written. Every
query is scoped to the shop, so another shop's variant ids are refused as unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import Shop, Variant, VariantBadge
from plugin.services import customer_mails
from plugin.services.admin_text import N_, _
from plugin.services.badging import refresh_badge
from plugin.services.shop_time import shop_today
from plugin.services.variant_csv import _value as checked_value
from plugin.services.variant_table import Filters, matching_ids

# The page's field names → (the CSV column whose rule checks it, the Variant attribute).
FIELDS = {
    "eta": ("eta", "eta_override"),
    "lead": ("lead_days", "lead_days_override"),
    "limit": ("backorder_limit", "backorder_limit"),
}
FIELD_LABELS = {"eta": N_("ETA"), "lead": N_("Lead time"), "limit": N_("Backorder limit")}
# What a bulk edit needs typed, per field.
MISSING_VALUE = {
    "eta": N_("Type the ETA to set, or clear it."),
    "lead": N_("Type the lead time to set, or clear it."),
    "limit": N_("Type the backorder limit to set, or clear it."),
}
FORM_FIELD = re.compile(r"variant-([0-9]{1,10})-(eta|lead|limit)")
CAUSE = "settings"
ID_BATCH = 1000
MAX_RAW = 40  # longer than any valid value: refused without being parsed
MAX_ID = 2**31 - 1
# The most rows one save may carry: 10,000 rows of JSON are well under 1 MB; more must be paged.
MAX_ROWS_PER_SAVE = 10_000
MAX_REASON = 500

Changes = dict[int, dict[str, str]]


@dataclass
class SaveResult:
    # {variant id: {field ("eta", "lead", "limit" or "row"): message}}
    errors: dict[int, dict[str, str]] = field(default_factory=dict)
    changed: list[int] = field(default_factory=list)  # variants whose values were written
    badges_changed: int = 0
    mail_ids: list[int] = field(default_factory=list)
    refused: str = ""  # why the whole request was refused (too many rows, say)

    @property
    def ok(self) -> bool:
        return not self.errors and not self.refused

    @property
    def message(self) -> str:
        if not self.ok:
            count = sum(len(fields) for fields in self.errors.values())
            return self.refused or _(
                "Nothing was saved: %(num)s value(s) to fix, marked below.", num=count
            )
        if not self.changed:
            return _("Nothing to save: every value is as it was.")
        return _(
            "Saved %(num)s variant(s); %(badges)s badge(s) updated.",
            num=len(self.changed),
            badges=self.badges_changed,
        )


@dataclass
class BulkResult:
    errors: dict[str, str] = field(default_factory=dict)  # {field: message}
    matched: int = 0
    changed: list[int] = field(default_factory=list)
    badges_changed: int = 0
    mail_ids: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def message(self) -> str:
        if not self.ok:
            return _("Nothing was changed: %(problems)s", problems=" ".join(self.errors.values()))
        return _(
            "Bulk edit: %(num)s of %(matched)s variant(s) changed; %(badges)s badge(s) updated.",
            num=len(self.changed),
            matched=self.matched,
            badges=self.badges_changed,
        )


# -- reading what was sent ------------------------------------------------------------------------


def changes_from_form(form: Mapping[str, str]) -> Changes:
    """`variant-<id>-eta|lead|limit` fields of the rows posted (a page's, or with `row` set,
    that one row's): {variant id: {field: typed}}."""
    only = str(form.get("row") or "").strip()
    changes: Changes = {}
    for key in form:
        match = FORM_FIELD.fullmatch(key)
        if match is None or (only and match.group(1) != only):
            continue
        changes.setdefault(int(match.group(1)), {})[match.group(2)] = str(form.get(key) or "")
    return changes


def _raw(value) -> str:
    """A JSON value as typed text: null clears; a number must be whole (True is not a number)."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return repr(value)[: MAX_RAW + 1]
    return str(value)


def changes_from_json(rows) -> tuple[Changes, str | None]:
    """[{"id": 12, "eta": "2026-12-24", "lead": 5, "limit": null}, …]: a key left out keeps
    that value, null clears it. Returns the changes or why the body cannot be read."""
    if not isinstance(rows, list):
        return {}, 'Send {"rows": [{"id": …, "eta": …, "lead": …, "limit": …}, …]}.'
    if len(rows) > MAX_ROWS_PER_SAVE:
        return {}, (
            f"{len(rows):,} rows in one save; send at most {MAX_ROWS_PER_SAVE:,} per request "
            "(page through them)."
        )
    changes: Changes = {}
    for number, row in enumerate(rows, start=1):
        vid = row.get("id") if isinstance(row, dict) else None
        if isinstance(vid, bool) or not isinstance(vid, int) or not 0 < vid <= MAX_ID:
            return {}, f"Row {number} needs the variant's id as a whole number."
        if vid in changes:
            return {}, f"Variant {vid} is sent twice (row {number})."
        changes[vid] = {name: _raw(row[name]) for name in FIELDS if name in row}
    return changes, None


# -- checking and writing --------------------------------------------------------------------------


def _chunks(ids: list[int]) -> Iterable[list[int]]:
    for start in range(0, len(ids), ID_BATCH):
        yield ids[start : start + ID_BATCH]


def _lock(session: Session, shop: Shop, ids: list[int]) -> dict[int, Variant]:
    """The shop's variants among `ids`, locked until commit (a CSV import racing waits)."""
    found: dict[int, Variant] = {}
    for chunk in _chunks(sorted(ids)):
        query = (
            select(Variant)
            .where(Variant.shop_id == shop.id, Variant.id.in_(chunk))
            .order_by(Variant.id)
            .with_for_update()
        )
        found.update((v.id, v) for v in session.scalars(query))
    return found


def _check(name: str, raw: str, today: date, old) -> tuple[object, str | None]:
    raw = raw.strip()
    if len(raw) > MAX_RAW:
        return None, _("%(label)s is too long to be a valid value.", label=_(FIELD_LABELS[name]))
    return checked_value(FIELDS[name][0], raw, today, old)


def _redecide(session: Session, shop: Shop, variants: list[Variant], reason: str, result) -> None:
    """Re-decide only `variants`; tell customers whose ship-by date moved."""
    ids = [v.id for v in variants]
    badges: dict[int, VariantBadge] = {}
    for chunk in _chunks(ids):  # loaded once, so each refresh finds its badge in the session
        query = select(VariantBadge).where(
            VariantBadge.shop_id == shop.id, VariantBadge.variant_id.in_(chunk)
        )
        badges.update((b.variant_id, b) for b in session.scalars(query))
    before = {vid: badge.eta for vid, badge in badges.items()}
    after = dict(before)
    for variant in variants:
        badge = refresh_badge(session, shop, variant, cause=CAUSE)
        if badge is not None:
            result.badges_changed += 1
            after[variant.id] = badge.eta
    moves = customer_mails.eta_moves(before, after)
    if moves and shop.is_active:
        result.mail_ids = customer_mails.after_eta_moves(
            session, shop, moves, reason=reason, links=customer_mails.app_links()
        )


def save_rows(
    session: Session, shop: Shop, changes: Changes, *, reason: str = "", today: date | None = None
) -> SaveResult:
    """Check every value sent; if all are valid, write those that differ and re-decide only
    those variants (not committed: `save` is the caller)."""
    result = SaveResult()
    if len(changes) > MAX_ROWS_PER_SAVE:
        result.refused = (
            f"{len(changes):,} rows in one save; send at most {MAX_ROWS_PER_SAVE:,} per request."
        )
        return result
    reason = " ".join(reason.split())
    if len(reason) > MAX_REASON:
        result.refused = _("Keep the reason to %(max)s characters or fewer.", max=MAX_REASON)
        return result
    today = today or shop_today(shop.timezone)
    variants = _lock(session, shop, list(changes))
    planned: list[tuple[Variant, str, object]] = []
    for vid, fields in changes.items():
        variant = variants.get(vid)
        if variant is None:
            result.errors[vid] = {"row": _("No such variant in this store.")}
            continue
        for name, raw in fields.items():
            attribute = FIELDS[name][1]
            value, problem = _check(name, raw, today, getattr(variant, attribute))
            if problem:
                result.errors.setdefault(vid, {})[name] = problem
            elif value != getattr(variant, attribute):
                planned.append((variant, attribute, value))
    if not result.ok:
        return result
    touched: dict[int, Variant] = {}
    for variant, attribute, value in planned:
        setattr(variant, attribute, value)
        touched[variant.id] = variant
    session.flush()
    result.changed = sorted(touched)
    _redecide(session, shop, list(touched.values()), reason, result)
    return result


def bulk_edit(
    session: Session,
    shop: Shop,
    target: list[int] | Filters,
    values: Mapping[str, str | None],
    *,
    reason: str = "",
    today: date | None = None,
) -> BulkResult:
    """Set (a value) or clear (None or "") ETA, lead time or limit on the variants selected by
    id, or on every variant a filter matches (all pages), in one transaction (not committed).
    Only the variants whose value differs are written and re-decided."""
    result = BulkResult()
    today = today or shop_today(shop.timezone)
    wanted: dict[str, object] = {}
    for name, raw in values.items():
        if name not in FIELDS:
            result.errors[name] = _(
                "Unknown field %(name)r; use eta, lead or limit.", name=name[:20]
            )
            continue
        if raw is not None and not str(raw).strip():
            result.errors[name] = _(MISSING_VALUE[name])
            continue
        value, problem = _check(name, "" if raw is None else str(raw), today, None)
        if problem:
            result.errors[name] = problem
        wanted[FIELDS[name][1]] = value
    if not wanted and not result.errors:
        result.errors["field"] = _("Choose what to set or clear.")
    if isinstance(target, Filters):
        ids = matching_ids(session, shop, target)
    else:
        ids = sorted({int(v) for v in target if isinstance(v, int) and 0 < v <= MAX_ID})
        if not ids:
            result.errors["selection"] = _("Select at least one variant.")
    if not result.ok:
        return result
    variants = _lock(session, shop, ids)
    result.matched = len(variants)
    touched = []
    for variant in variants.values():
        differs = {a: v for a, v in wanted.items() if getattr(variant, a) != v}
        if differs:
            for attribute, value in differs.items():
                setattr(variant, attribute, value)
            touched.append(variant)
    session.flush()
    result.changed = [v.id for v in touched]
    _redecide(session, shop, touched, " ".join(reason.split())[:MAX_REASON], result)
    return result


def _commit_and_push(session: Session, shop: Shop, result) -> None:
    session.commit()
    from plugin.jobs import queue_mails, schedule_push

    if result.badges_changed and shop.is_active:
        schedule_push(shop.id)
    queue_mails(result.mail_ids)


def save(session: Session, shop: Shop, changes: Changes, *, reason: str = "") -> SaveResult:
    """The one way every shell saves rows: check, write and commit, then schedule the push; or,
    with any refusal, nothing (rolled back)."""
    result = save_rows(session, shop, changes, reason=reason)
    if not result.ok:
        session.rollback()
        return result
    _commit_and_push(session, shop, result)
    return result


def bulk(
    session: Session,
    shop: Shop,
    target: list[int] | Filters,
    values: Mapping[str, str | None],
    *,
    reason: str = "",
) -> BulkResult:
    """A bulk edit, committed and pushed, or nothing."""
    result = bulk_edit(session, shop, target, values, reason=reason)
    if not result.ok:
        session.rollback()
        return result
    _commit_and_push(session, shop, result)
    return result


def bulk_request(form: Mapping[str, str], selected: list[str]) -> tuple[list[int] | Filters, dict]:
    """A bulk edit as an HTML form sends it: `scope` "selected" (the ticked `selected` ids) or
    "filter" (everything the page's filter matches); `field`, `action` (set or clear), `value`."""
    from plugin.services.variant_table import filters_from

    if form.get("scope") == "filter":
        target: list[int] | Filters = filters_from(form)[0]
    else:
        target = [int(v) for v in selected if str(v).isdigit() and len(str(v)) < 11]
    name = str(form.get("field") or "")
    value = None if form.get("action") == "clear" else str(form.get("value") or "")[: MAX_RAW + 1]
    return target, {name: value} if name else {}
