"""CSV export and import of the merchant's per-variant ETAs, lead times and backorder limits.

A merchant with thousands of variants edits them in a spreadsheet, so an import must be safe to
get wrong: `check` reads the whole file and either lists every bad row (line number and reason)
or lists the changes, writing nothing; `apply` writes all of them in one transaction or none.
Between the two steps the checked changes travel signed (`sign`/`unsign`, no server-side file),
each with the value it replaces, so a plan that went stale meanwhile is refused, not half-done.

Rows are keyed by `variant_id` (the store's own variant id, as in the store's admin) or by
`sku`. An empty cell clears the override; a column left out leaves that value alone. Only the
variants whose values change are re-decided. Every query is scoped to one shop, so another
shop's ids are simply unknown here. No Flask: callers pass the secret and commit nothing else.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from babel.numbers import format_decimal
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugin.models import Product, Shop, Variant, VariantBadge
from plugin.services import admin_text, customer_mails
from plugin.services.admin_text import N_, _, ngettext
from plugin.services.badging import refresh_badge
from plugin.services.notify_waitlist import FORMULA_STARTS, safe_cell
from plugin.services.settings_form import MAX_DAYS_AHEAD, MAX_LEAD_DAYS, MAX_LIMIT, WHOLE
from plugin.services.shop_time import shop_today

COLUMNS = ("variant_id", "sku", "product", "variant", "eta", "lead_days", "backorder_limit")
KEYS = ("variant_id", "sku")
# What each value column sets on the variant, and its bounds (the settings page's own).
VALUE_FIELDS = {
    "eta": "eta_override",
    "lead_days": "lead_days_override",
    "backorder_limit": "backorder_limit",
}
BOUNDS = {
    "lead_days": (0, MAX_LEAD_DAYS, N_("Lead time")),
    "backorder_limit": (0, MAX_LIMIT, N_("Backorder limit")),
}
MAX_ROWS = 20_000
MAX_CELL = 255
CAUSE = "csv import"
SALT = "variant-csv-import"
PLAN_MAX_AGE = 3600  # seconds a checked file may wait for the merchant's confirmation
EXPORT_BATCH = 1000
PREVIEW_ROWS = 500  # changes listed on the confirmation page (all are counted and applied)
# The largest signed plan a confirmation may post (20,000 rows of three changes fit well).
MAX_SIGNED_PLAN = 4 * 1024 * 1024

Value = date | int | None


@dataclass(frozen=True)
class Change:
    line: int
    variant_id: int  # the app's id
    field: str  # a VALUE_FIELDS key
    old: Value
    new: Value
    platform_id: str = ""
    sku: str = ""
    name: str = ""


@dataclass
class ImportPlan:
    errors: list[tuple[int, str]] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def variants(self) -> int:
        return len({c.variant_id for c in self.changes})


@dataclass
class ApplyResult:
    applied: bool
    plan: ImportPlan
    badges_changed: int = 0
    mail_ids: list[int] = field(default_factory=list)


class PlanRefused(ValueError):
    """A signed plan that is forged, for another shop, or too old."""


# -- export ---------------------------------------------------------------------------------------


def _cell(value: Value) -> str:
    if value is None:
        return ""
    return value.isoformat() if isinstance(value, date) else str(value)


def export_rows(session: Session, shop: Shop) -> Iterator[list[str]]:
    query = (
        select(Variant, Product.title)
        .outerjoin(Product, Product.id == Variant.product_id)
        .where(Variant.shop_id == shop.id)
        .order_by(Variant.id)
        .execution_options(yield_per=EXPORT_BATCH)
    )
    for variant, product in session.execute(query):
        yield [
            safe_cell(cell)
            for cell in (
                variant.platform_id,
                variant.sku,
                product or "",
                variant.title,
                _cell(variant.eta_override),
                _cell(variant.lead_days_override),
                _cell(variant.backorder_limit),
            )
        ]


def export(session: Session, shop: Shop) -> str:
    """Every variant of the shop, with a BOM so spreadsheets read it as UTF-8."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(export_rows(session, shop))
    return buffer.getvalue()


def export_filename(shop: Shop, now: datetime) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in shop.domain)[:60]
    return f"variants-{safe}-{now:%Y-%m-%d}.csv"


# -- check ----------------------------------------------------------------------------------------


def _decode(data: str | bytes, plan: ImportPlan) -> str | None:
    if isinstance(data, str):
        return data.removeprefix("\ufeff")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        plan.errors.append(
            (line, _("The file is not UTF-8 text: save it as 'CSV UTF-8' and retry."))
        )
        return None


def _unescape(raw: str) -> str:
    """Undo the apostrophe the export puts before a cell a spreadsheet would run."""
    raw = raw.strip()
    if raw.startswith("'") and raw[1:].startswith(FORMULA_STARTS):
        return raw[1:]
    return raw


def _read_rows(text: str, plan: ImportPlan) -> Iterator[tuple[int, list[str]]]:
    """(first line number, cells) of each non-blank record; a broken file ends with an error."""
    reader = csv.reader(io.StringIO(text, newline=""))
    last = 0
    try:
        for row in reader:
            start, last = last + 1, reader.line_num
            if any(cell.strip() for cell in row):
                yield start, row
    except csv.Error as exc:
        plan.errors.append(
            (last + 1, _("The file cannot be read from here on (%(error)s).", error=exc))
        )


def _header(row: list[str], plan: ImportPlan, line: int) -> list[str] | None:
    names = [_unescape(cell).lower().replace(" ", "_") for cell in row]
    problems = []
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        problems.append(
            _(
                "Unknown column %(column)r; the columns are %(columns)s.",
                column=unknown[0][:40],
                columns=", ".join(COLUMNS),
            )
        )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        problems.append(_("Column %(column)r appears twice.", column=repeated[0][:40]))
    if not any(k in names for k in KEYS):
        problems.append(_("A variant_id or sku column is needed to find each variant."))
    if not any(v in names for v in VALUE_FIELDS):
        problems.append(_("No eta, lead_days or backorder_limit column: nothing to import."))
    plan.errors.extend((line, p) for p in problems)
    return None if problems else names


def _value(column: str, raw: str, today: date, old: Value) -> tuple[Value, str | None]:
    """The cell's value, or why it is refused. Empty clears the override."""
    if raw == "":
        return None, None
    if column == "eta":
        try:
            value = date.fromisoformat(raw)
        except ValueError:
            return None, _("ETA %(typed)r is not a date like 2026-12-24.", typed=raw[:20])
        # A date the variant already has is left as it is, even passed (the settings page flags
        # it): a file exported earlier imports back unchanged.
        if value == old:
            return value, None
        if value < today:
            return None, _("ETA %(date)s is in the past.", date=raw)
        if value > today + timedelta(days=MAX_DAYS_AHEAD):
            return None, _(
                "ETA %(date)s is more than %(max)s days ahead.", date=raw, max=MAX_DAYS_AHEAD
            )
        return value, None
    low, high, label = BOUNDS[column]
    label = _(label)
    if not WHOLE.fullmatch(raw):
        if raw.lstrip("+-").isascii() and raw.lstrip("+-").isdigit():
            return None, _(
                "%(label)s must be between %(low)s and %(high)s.", label=label, low=low, high=high
            )
        return None, _("%(label)s %(typed)r must be a whole number.", label=label, typed=raw[:20])
    value = int(raw)
    if not low <= value <= high:
        return None, _(
            "%(label)s must be between %(low)s and %(high)s (got %(value)s).",
            label=label,
            low=low,
            high=high,
            value=value,
        )
    return value, None


@dataclass(frozen=True)
class _Known:
    id: int
    platform_id: str
    sku: str
    name: str
    values: dict


def _known(session: Session, shop: Shop) -> tuple[dict[str, _Known], dict[str, list[_Known]]]:
    rows = session.execute(
        select(
            Variant.id,
            Variant.platform_id,
            Variant.sku,
            Variant.title,
            Product.title,
            Variant.eta_override,
            Variant.lead_days_override,
            Variant.backorder_limit,
        )
        .outerjoin(Product, Product.id == Variant.product_id)
        .where(Variant.shop_id == shop.id)
    )
    by_id: dict[str, _Known] = {}
    by_sku: dict[str, list[_Known]] = {}
    for vid, platform_id, sku, title, product, eta, lead, limit in rows:
        name = f"{product} · {title}" if product else title
        known = _Known(
            vid,
            platform_id,
            sku or "",
            name,
            {"eta": eta, "lead_days": lead, "backorder_limit": limit},
        )
        by_id[platform_id] = known
        if sku:
            by_sku.setdefault(sku, []).append(known)
    return by_id, by_sku


def _find(cells: dict[str, str], by_id, by_sku) -> tuple[_Known | None, str | None]:
    vid, sku = cells.get("variant_id", ""), cells.get("sku", "")
    if vid:
        known = by_id.get(vid)
        if known is None:
            return None, _("No variant with id %(id)r in this store.", id=vid[:40])
        if sku and sku != known.sku:
            return None, _(
                "Variant %(id)s has SKU %(sku)r, not %(typed)r.",
                id=vid[:40],
                sku=known.sku[:40],
                typed=sku[:40],
            )
        return known, None
    if sku:
        matches = by_sku.get(sku, [])
        if not matches:
            return None, _("No variant with SKU %(sku)r in this store.", sku=sku[:40])
        if len(matches) > 1:
            return None, _(
                "SKU %(sku)r matches %(count)s variants; use variant_id.",
                sku=sku[:40],
                count=len(matches),
            )
        return matches[0], None
    return None, _("Give a variant_id or an sku.")


def check(session: Session, shop: Shop, data: str | bytes, today: date | None = None) -> ImportPlan:
    """Read and validate the whole file; nothing is written. Either `errors` (every bad row)
    or `changes` (variant, field, old, new) is filled."""
    plan = ImportPlan()
    text = _decode(data, plan)
    if text is None:
        return plan
    today = today or shop_today(shop.timezone)
    rows = _read_rows(text, plan)
    first = next(rows, None)
    if first is None:
        plan.errors = plan.errors or [(1, _("The file is empty: a header row is needed."))]
        return plan
    names = _header(first[1], plan, first[0])
    if names is None:
        return plan
    records = list(rows)
    plan.rows = len(records)
    if len(records) > MAX_ROWS:
        plan.errors.append(
            (
                records[MAX_ROWS][0],
                _(
                    "More than %(max)s rows: split the file and import each.",
                    max=format_decimal(MAX_ROWS, locale=admin_text.locale()),
                ),
            )
        )
        return plan
    by_id, by_sku = _known(session, shop)
    seen: dict[int, int] = {}
    changes: list[Change] = []
    for line, row in records:
        if len(row) != len(names):
            plan.errors.append(
                (
                    line,
                    _(
                        "%(cells)s cells where the header has %(header)s.",
                        cells=len(row),
                        header=len(names),
                    ),
                )
            )
            continue
        cells = {name: _unescape(cell) for name, cell in zip(names, row, strict=True)}
        too_long = [n for n, v in cells.items() if len(v) > MAX_CELL]
        if too_long:
            plan.errors.append(
                (
                    line,
                    _(
                        "%(column)s is longer than %(max)s characters.",
                        column=too_long[0],
                        max=MAX_CELL,
                    ),
                )
            )
            continue
        known, problem = _find(cells, by_id, by_sku)
        if known is None:
            plan.errors.append((line, problem or _("Unknown variant.")))
            continue
        if known.id in seen:
            plan.errors.append(
                (
                    line,
                    _(
                        "Variant %(id)s is already on line %(line)s.",
                        id=known.platform_id,
                        line=seen[known.id],
                    ),
                )
            )
            continue
        seen[known.id] = line
        for column in VALUE_FIELDS:
            if column not in cells:
                continue
            old = known.values[column]
            new, problem = _value(column, cells[column], today, old)
            if problem:
                plan.errors.append((line, problem))
            elif new != old:
                changes.append(
                    Change(
                        line, known.id, column, old, new, known.platform_id, known.sku, known.name
                    )
                )
    if plan.ok:
        plan.changes = changes
    return plan


# -- carrying a checked plan to the confirmation --------------------------------------------------


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=SALT)


def _plain(value: Value):
    return value.isoformat() if isinstance(value, date) else value


def _typed(column: str, value) -> Value:
    if value is None:
        return None
    return date.fromisoformat(value) if column == "eta" else int(value)


def sign(plan: ImportPlan, shop: Shop, secret_key: str) -> str:
    """The checked changes, signed for this shop (compressed: a 20,000-row plan stays small)."""
    if not plan.ok:
        raise ValueError("only a plan without errors can be confirmed")
    changes = [
        [c.line, c.variant_id, c.field, _plain(c.old), _plain(c.new), c.platform_id, c.sku]
        for c in plan.changes
    ]
    return _serializer(secret_key).dumps({"shop": shop.id, "rows": plan.rows, "changes": changes})


def unsign(token: str, shop: Shop, secret_key: str, max_age: int = PLAN_MAX_AGE) -> ImportPlan:
    try:
        payload = _serializer(secret_key).loads(token, max_age=max_age)
    except SignatureExpired as exc:
        raise PlanRefused(_("This check is over an hour old: upload the file again.")) from exc
    except BadSignature as exc:
        raise PlanRefused(_("This import could not be verified: upload the file again.")) from exc
    if payload.get("shop") != shop.id:
        raise PlanRefused(_("This import was checked for another store."))
    changes = [
        Change(line, vid, column, _typed(column, old), _typed(column, new), pid, sku)
        for line, vid, column, old, new, pid, sku in payload["changes"]
    ]
    return ImportPlan(changes=changes, rows=payload.get("rows", 0))


# -- apply ----------------------------------------------------------------------------------------

FIELD_LABELS = {"eta": N_("ETA"), "lead_days": N_("Lead time"), "backorder_limit": N_("Limit")}
ID_BATCH = 1000


def _chunks(ids: list[int]) -> Iterator[list[int]]:
    for start in range(0, len(ids), ID_BATCH):
        yield ids[start : start + ID_BATCH]


def _lock_variants(session: Session, shop: Shop, ids: list[int]) -> dict[int, Variant]:
    """The shop's variants among `ids`, locked until commit: a save racing this import waits."""
    found: dict[int, Variant] = {}
    for chunk in _chunks(ids):
        query = (
            select(Variant)
            .where(Variant.shop_id == shop.id, Variant.id.in_(chunk))
            .with_for_update()
        )
        found.update((v.id, v) for v in session.scalars(query))
    return found


def _stale(plan: ImportPlan, variants: dict[int, Variant], today: date) -> list[tuple[int, str]]:
    """Rows whose variant moved on since the check: the merchant confirmed something else."""
    errors = []
    for change in plan.changes:
        variant = variants.get(change.variant_id)
        label = _(FIELD_LABELS[change.field])
        if variant is None:
            errors.append((change.line, _("This variant is no longer in the store.")))
        elif getattr(variant, VALUE_FIELDS[change.field]) != change.old:
            errors.append(
                (
                    change.line,
                    _("%(label)s was changed by someone else since the check.", label=label),
                )
            )
        elif change.field == "eta" and change.new is not None and change.new < today:
            errors.append(
                (change.line, _("ETA %(date)s is now in the past.", date=change.new.isoformat()))
            )
    return errors


def apply(
    session: Session, shop: Shop, plan_or_text: ImportPlan | str | bytes, today: date | None = None
) -> ApplyResult:
    """Write every change of a checked plan (or of a file, checked first) and commit, or write
    nothing: a plan with errors, or gone stale since it was checked, is refused whole.

    Only the variants that change are re-decided; a push is scheduled once committed and
    customers whose ETA moved are told, as when the settings page moves it."""
    today = today or shop_today(shop.timezone)
    if isinstance(plan_or_text, ImportPlan):
        plan = plan_or_text
    else:
        plan = check(session, shop, plan_or_text, today)
    if not plan.ok:
        session.rollback()
        return ApplyResult(False, plan)
    ids = sorted({c.variant_id for c in plan.changes})
    variants = _lock_variants(session, shop, ids)
    stale = _stale(plan, variants, today)
    if stale:
        session.rollback()
        return ApplyResult(False, ImportPlan(errors=stale, rows=plan.rows))
    for change in plan.changes:
        setattr(variants[change.variant_id], VALUE_FIELDS[change.field], change.new)
    session.flush()
    badges: dict[int, VariantBadge] = {}
    for chunk in _chunks(ids):
        query = select(VariantBadge).where(
            VariantBadge.shop_id == shop.id, VariantBadge.variant_id.in_(chunk)
        )
        badges.update((b.variant_id, b) for b in session.scalars(query))
    before = {vid: badge.eta for vid, badge in badges.items()}
    after = dict(before)
    changed = 0
    for vid in ids:
        badge = refresh_badge(session, shop, variants[vid], cause=CAUSE)
        if badge is not None:
            changed += 1
            after[vid] = badge.eta
    moves = customer_mails.eta_moves(before, after)
    mail_ids: list[int] = []
    if moves and shop.is_active:
        mail_ids = customer_mails.after_eta_moves(
            session, shop, moves, cause=CAUSE, links=customer_mails.app_links()
        )
    session.commit()
    from plugin.jobs import queue_mails, schedule_push

    if changed and shop.is_active:
        schedule_push(shop.id)
    queue_mails(mail_ids)
    return ApplyResult(True, plan, changed, mail_ids)


def applied_message(result: ApplyResult) -> str:
    count, variants = len(result.plan.changes), result.plan.variants
    return _(
        "Imported %(changes)s to %(variants)s; %(badges)s badge(s) updated.",
        changes=ngettext("%(num)s change", "%(num)s changes", count),
        variants=ngettext("%(num)s variant", "%(num)s variants", variants),
        badges=result.badges_changed,
    )
