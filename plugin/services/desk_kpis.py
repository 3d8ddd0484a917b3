"""Support desk KPIs: how a shop's backorders are going over a period, from the ledger in SQL.

Every figure is one SQL aggregate over the shop's own rows (no Python loop over lines); only
already-aggregated rows (per day, per variant) are reshaped here. A period is a run of whole
days in the shop's zone, [start, end): its bounds are the shop's local midnights, as UTC.

- **Backorder rate**: units that went on backorder / units ordered, over the orders placed in
  the period (`BackorderLine.quantity` over `OrderLine.ordered_quantity`; a line's
  `ordered_at` is its order's `placed_at`).
- **Cycle time**: per backordered line fulfilled in the period (`fulfilled_at` in it, at least
  one backordered unit shipped), the days from the order to that fulfilment, with decimals
  (`fulfilled_at - ordered_at`, 36 hours = 1.5). The median and the 90th percentile over those
  lines, one value per line whatever its units, interpolated between the two nearest ranks as
  PostgreSQL's `percentile_cont` does: sorted values v[0..n-1], p-th percentile at h = (n-1)p,
  v[floor h] + (h - floor h)(v[floor h + 1] - v[floor h]). Read with ORDER BY / OFFSET, which
  PostgreSQL and SQLite both have.
- **On-time rate**: of the backordered units fulfilled in the period whose line has a promised
  date (`promised_eta`, the ship date the customer was first told), the share shipped on or
  before that date, the shipping day taken in the shop's zone. Lines without a promise (opened
  while the badge had no date, or before the app was installed) are counted apart.
- **Cancellation rate**: cancelled backordered units / backordered units, over the lines of
  orders placed in the period (the same lines as the backorder rate: a line opens with its
  order).
- **Units owed now** (open + allocated) per product and per option value: a variant's title
  "Red / L" is the option values "Red" (option 1) and "L" (option 2), split from the rows
  already summed per variant; **notify-me demand** per variant: sign-ups still waiting (pending
  confirmation or confirmed).

On PostgreSQL a moment's local day is `timezone(zone, at)`, exact across daylight-saving
changes; SQLite (the embedded demo) has no zones, so there it is shifted by the zone's offset at
the period's middle.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import Date, Float, Integer, case, cast, func, literal, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from plugin.models import (
    BackorderLine,
    NotifySubscription,
    Order,
    OrderLine,
    Product,
    Shop,
    Variant,
)
from plugin.models.notify import WAITING
from plugin.models.notify import SubscriptionStatus as Sub
from plugin.services.admin_text import _
from plugin.services.ledger import OWING
from plugin.services.notify_waitlist import safe_cell
from plugin.services.shop_time import shop_today, shop_zone

PRESETS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366
# Cycle-time histogram: one bar per whole day, the last one "this many days or more".
HISTOGRAM_DAYS = 30
# Rows of a ranking shown on the page (the CSV has them all).
TOP = 25
OPTION_SEPARATOR = " / "


class PeriodRefused(ValueError):
    """The period's arguments do not name a period (said in the merchant's words)."""


@dataclass(frozen=True)
class Period:
    start: date  # first day, in the shop's zone
    end: date  # the day after the last one
    preset: int | None = None  # 7, 30 or 90 when chosen that way

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    def bounds(self, timezone: str | None) -> tuple[datetime, datetime]:
        """The period's first and past-the-end moments: local midnights, in UTC."""
        zone = shop_zone(timezone)
        return tuple(
            datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)
            for day in (self.start, self.end)
        )

    def args(self) -> dict[str, str]:
        """The query arguments that name this period again (for links and CSV exports)."""
        if self.preset:
            return {"period": str(self.preset)}
        return {"start": self.start.isoformat(), "end": self.last_day.isoformat()}


def parse_period(args, timezone: str | None, now: datetime | None = None) -> Period:
    """`period=7|30|90` (the last N days, today included), or `start=` and `end=` (ISO dates,
    both days included); nothing means the last 30 days. Anything else is refused."""
    today = shop_today(timezone, now)
    start_arg = (args.get("start") or "").strip()
    end_arg = (args.get("end") or "").strip()
    preset = (args.get("period") or "").strip()
    if start_arg or end_arg:
        if preset:
            raise PeriodRefused(_("Choose either a preset period or your own dates, not both."))
        try:
            first, last = date.fromisoformat(start_arg), date.fromisoformat(end_arg)
        except ValueError:
            raise PeriodRefused(
                _("Give both dates of the period as YYYY-MM-DD, the first and the last day.")
            ) from None
        if last < first:
            raise PeriodRefused(_("The period's last day is before its first day."))
        if (last - first).days + 1 > MAX_DAYS:
            raise PeriodRefused(_("A period can be at most %(days)s days long.", days=MAX_DAYS))
        return Period(first, last + timedelta(days=1))
    days = DEFAULT_DAYS
    if preset:
        if preset not in {str(n) for n in PRESETS}:
            raise PeriodRefused(_("The period is 7, 30 or 90 days, or your own dates."))
        days = int(preset)
    return Period(today - timedelta(days=days - 1), today + timedelta(days=1), days)


# --- the figures ---------------------------------------------------------------------------------


@dataclass
class Kpis:
    period: Period
    ordered_units: int = 0
    backordered_units: int = 0
    backorder_rate: float | None = None  # None: no units ordered in the period
    cancelled_units: int = 0
    cancellation_rate: float | None = None  # None: nothing went on backorder
    fulfilled_lines: int = 0
    cycle_median_days: float | None = None
    cycle_p90_days: float | None = None
    fulfilled_units: int = 0  # backordered units shipped in the period
    promised_units: int = 0  # ... of lines with a promised date
    on_time_units: int = 0
    on_time_rate: float | None = None
    unpromised_units: int = 0
    # [(day, units ordered, units backordered)] for every day of the period
    daily: list[tuple[date, int, int]] = field(default_factory=list)
    # [(label, lines)]: whole days from order to fulfilment
    cycle_histogram: list[tuple[str, int]] = field(default_factory=list)
    owed_units: int = 0
    # [(product, units owed)], most first
    owed_by_product: list[tuple[str, int]] = field(default_factory=list)
    # [(option position 1.., value, units owed)], by position then most first
    owed_by_option: list[tuple[int, str, int]] = field(default_factory=list)
    # [(product, variant, sku, waiting, of which confirmed)], most first
    notify_demand: list[tuple[str, str, str, int, int]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Nothing ordered, fulfilled or cancelled in the period."""
        return not (self.ordered_units or self.backordered_units or self.fulfilled_lines)


def compute(session: Session, shop: Shop, period: Period) -> Kpis:
    kpis = Kpis(period)
    start, end = period.bounds(shop.timezone)
    local = _LocalDay(session, shop.timezone, start + (end - start) / 2)
    _rates(session, shop, start, end, kpis)
    _daily(session, shop, start, end, local, kpis)
    _cycle(session, shop, start, end, local, kpis)
    _owed(session, shop, kpis)
    _demand(session, shop, kpis)
    return kpis


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _rates(session: Session, shop: Shop, start: datetime, end: datetime, kpis: Kpis) -> None:
    kpis.ordered_units = session.scalar(
        select(func.coalesce(func.sum(OrderLine.ordered_quantity), 0))
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.shop_id == shop.id, Order.placed_at >= start, Order.placed_at < end)
    )
    backordered, cancelled = session.execute(
        select(
            func.coalesce(func.sum(BackorderLine.quantity), 0),
            func.coalesce(func.sum(BackorderLine.cancelled_quantity), 0),
        ).where(*_cohort(shop, start, end))
    ).one()
    kpis.backordered_units, kpis.cancelled_units = int(backordered), int(cancelled)
    kpis.backorder_rate = _ratio(kpis.backordered_units, kpis.ordered_units)
    kpis.cancellation_rate = _ratio(kpis.cancelled_units, kpis.backordered_units)


def _cohort(shop: Shop, start: datetime, end: datetime) -> tuple:
    return (
        BackorderLine.shop_id == shop.id,
        BackorderLine.ordered_at >= start,
        BackorderLine.ordered_at < end,
    )


def _shipped(shop: Shop, start: datetime, end: datetime) -> tuple:
    return (
        BackorderLine.shop_id == shop.id,
        BackorderLine.fulfilled_quantity > 0,
        BackorderLine.fulfilled_at >= start,
        BackorderLine.fulfilled_at < end,
    )


class _LocalDay:
    """SQL for "which day in the shop's zone", and for "how many days between"."""

    def __init__(self, session: Session, timezone: str | None, middle: datetime):
        self.postgres = session.get_bind().dialect.name == "postgresql"
        self.zone = shop_zone(timezone)
        offset = middle.astimezone(self.zone).utcoffset() or timedelta(0)
        self.offset_minutes = int(offset.total_seconds() // 60)

    def day(self, column) -> ColumnElement:
        if self.postgres:
            return cast(func.timezone(self.zone.key, column), Date)
        return func.date(column, f"{self.offset_minutes:+d} minutes")

    def days_between(self, later, earlier) -> ColumnElement:
        if self.postgres:
            return cast(func.extract("epoch", later - earlier), Float) / 86400.0
        return func.julianday(later) - func.julianday(earlier)

    def whole(self, value) -> ColumnElement:
        """Whole days, rounded down (PostgreSQL's integer cast rounds; SQLite's truncates)."""
        return cast(func.floor(value), Integer) if self.postgres else cast(value, Integer)

    def parse(self, value) -> date:
        return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _daily(
    session: Session, shop: Shop, start: datetime, end: datetime, local: _LocalDay, kpis: Kpis
) -> None:
    day = local.day(Order.placed_at).label("day")
    ordered = {
        local.parse(d): int(units)
        for d, units in session.execute(
            select(day, func.sum(OrderLine.ordered_quantity))
            .join(Order, Order.id == OrderLine.order_id)
            .where(Order.shop_id == shop.id, Order.placed_at >= start, Order.placed_at < end)
            .group_by(day)
        )
    }
    bday = local.day(BackorderLine.ordered_at).label("day")
    backordered = {
        local.parse(d): int(units)
        for d, units in session.execute(
            select(bday, func.sum(BackorderLine.quantity))
            .where(*_cohort(shop, start, end))
            .group_by(bday)
        )
    }
    period = kpis.period
    kpis.daily = [
        (d, ordered.get(d, 0), backordered.get(d, 0))
        for d in (period.start + timedelta(days=n) for n in range(period.days))
    ]


def _cycle(
    session: Session, shop: Shop, start: datetime, end: datetime, local: _LocalDay, kpis: Kpis
) -> None:
    shipped = _shipped(shop, start, end)
    days = local.days_between(BackorderLine.fulfilled_at, BackorderLine.ordered_at)
    promised = BackorderLine.promised_eta.is_not(None)
    on_time = promised & (local.day(BackorderLine.fulfilled_at) <= BackorderLine.promised_eta)
    lines, units, promised_units, on_time_units = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(BackorderLine.fulfilled_quantity), 0),
            func.coalesce(func.sum(_when(promised, BackorderLine.fulfilled_quantity)), 0),
            func.coalesce(func.sum(_when(on_time, BackorderLine.fulfilled_quantity)), 0),
        ).where(*shipped)
    ).one()
    kpis.fulfilled_lines, kpis.fulfilled_units = int(lines), int(units)
    kpis.promised_units, kpis.on_time_units = int(promised_units), int(on_time_units)
    kpis.unpromised_units = kpis.fulfilled_units - kpis.promised_units
    kpis.on_time_rate = _ratio(kpis.on_time_units, kpis.promised_units)
    if kpis.fulfilled_lines:
        ordered = select(days).where(*shipped).order_by(days)
        kpis.cycle_median_days = _percentile(session, ordered, kpis.fulfilled_lines, 50)
        kpis.cycle_p90_days = _percentile(session, ordered, kpis.fulfilled_lines, 90)
    smaller = func.least if local.postgres else func.min  # SQLite's two-argument min()
    bucket = smaller(local.whole(days), HISTOGRAM_DAYS).label("bucket")
    counts = dict(
        session.execute(select(bucket, func.count()).where(*shipped).group_by(bucket)).all()
    )
    if counts:
        top = max(int(b) for b in counts)
        kpis.cycle_histogram = [
            (
                _("%(days)s+ days", days=HISTOGRAM_DAYS)
                if n == HISTOGRAM_DAYS
                else _("%(low)s-%(high)s days", low=n, high=n + 1),
                int(counts.get(n, 0)),
            )
            for n in range(0, top + 1)
        ]


def _when(condition, value) -> ColumnElement:
    return case((condition, value), else_=literal(0))


def _percentile(session: Session, ordered, n: int, percent: int) -> float:
    """The percentile of the n values `ordered` yields (sorted), interpolated between the two
    nearest ranks: at most two rows read, at their offset."""
    rank, rest = divmod((n - 1) * percent, 100)
    values = [float(v) for v in session.scalars(ordered.offset(rank).limit(2))]
    if rest and len(values) == 2:
        return values[0] + (values[1] - values[0]) * rest / 100
    return values[0]


def _owed(session: Session, shop: Shop, kpis: Kpis) -> None:
    owed = func.sum(BackorderLine.open_quantity + BackorderLine.allocated_quantity)
    per_variant = session.execute(
        select(Variant.title, owed)
        .join(Variant, Variant.id == BackorderLine.variant_id)
        .where(BackorderLine.shop_id == shop.id, BackorderLine.status.in_(OWING))
        .group_by(Variant.id, Variant.title)
    ).all()
    kpis.owed_units = sum(int(units) for _title, units in per_variant)
    per_product = (
        select(Product.title, owed.label("owed"))
        .select_from(BackorderLine)
        .join(Variant, Variant.id == BackorderLine.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(BackorderLine.shop_id == shop.id, BackorderLine.status.in_(OWING))
        .group_by(Product.id, Product.title)
        .having(owed > 0)
        .order_by(owed.desc(), Product.title)
    )
    kpis.owed_by_product = [(title, int(units)) for title, units in session.execute(per_product)]
    options: dict[tuple[int, str], int] = {}
    for title, units in per_variant:  # one row per variant, already summed
        if not units or not title or title == "Default Title":
            continue
        for position, value in enumerate(title.split(OPTION_SEPARATOR), start=1):
            key = (position, value.strip())
            options[key] = options.get(key, 0) + int(units)
    kpis.owed_by_option = sorted(
        ((position, value, units) for (position, value), units in options.items()),
        key=lambda row: (row[0], -row[2], row[1]),
    )


def _demand(session: Session, shop: Shop, kpis: Kpis) -> None:
    waiting = func.count(NotifySubscription.id)
    confirmed = func.sum(_when(NotifySubscription.status == Sub.ACTIVE, 1))
    rows = session.execute(
        select(Product.title, Variant.title, Variant.sku, waiting, confirmed)
        .select_from(NotifySubscription)
        .join(Variant, Variant.id == NotifySubscription.variant_id)
        .join(Product, Product.id == Variant.product_id)
        .where(NotifySubscription.shop_id == shop.id, NotifySubscription.status.in_(WAITING))
        .group_by(Variant.id, Product.title, Variant.title, Variant.sku)
        .order_by(waiting.desc(), Product.title, Variant.title)
    )
    kpis.notify_demand = [
        (product, variant, sku or "", int(n), int(c or 0)) for product, variant, sku, n, c in rows
    ]


# --- the tables, as the page shows them and the CSV exports them ---------------------------------

TABLES = ("summary", "daily", "cycle_time", "owed_by_product", "owed_by_option", "notify_demand")


def _percent(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}"


def _days(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def table(kpis: Kpis, name: str) -> tuple[list[str], list[list]]:
    """A table's header and rows (CSV-ready: numbers, percentages without the sign)."""
    if name == "summary":
        return [_("Figure"), _("Value")], [
            [_("Units ordered"), kpis.ordered_units],
            [_("Units backordered"), kpis.backordered_units],
            [_("Backorder rate (%)"), _percent(kpis.backorder_rate)],
            [_("Backordered units cancelled"), kpis.cancelled_units],
            [_("Cancellation rate (%)"), _percent(kpis.cancellation_rate)],
            [_("Backordered lines fulfilled"), kpis.fulfilled_lines],
            [_("Cycle time, median (days)"), _days(kpis.cycle_median_days)],
            [_("Cycle time, 90th percentile (days)"), _days(kpis.cycle_p90_days)],
            [_("Backordered units fulfilled with a promised date"), kpis.promised_units],
            [_("... of which by the promised date"), kpis.on_time_units],
            [_("On-time rate (%)"), _percent(kpis.on_time_rate)],
            [_("Backordered units fulfilled without a promised date"), kpis.unpromised_units],
            [_("Units owed now"), kpis.owed_units],
        ]
    if name == "daily":
        return [_("Day"), _("Units ordered"), _("Units backordered")], [
            [d.isoformat(), ordered, backordered] for d, ordered, backordered in kpis.daily
        ]
    if name == "cycle_time":
        return [_("Days from order to fulfilment"), _("Lines")], [
            list(row) for row in kpis.cycle_histogram
        ]
    if name == "owed_by_product":
        return [_("Product"), _("Units owed")], [list(row) for row in kpis.owed_by_product]
    if name == "owed_by_option":
        return [_("Option"), _("Value"), _("Units owed")], [
            list(row) for row in kpis.owed_by_option
        ]
    if name == "notify_demand":
        return [_("Product"), _("Variant"), _("SKU"), _("Waiting"), _("Confirmed")], [
            list(row) for row in kpis.notify_demand
        ]
    raise KeyError(name)


def export_csv(kpis: Kpis, name: str) -> str:
    """One table as CSV: a BOM so spreadsheets read it as UTF-8, the header, the rows (text
    that a spreadsheet would run as a formula gets a leading apostrophe)."""
    header, rows = table(kpis, name)
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([[safe_cell(cell) for cell in row] for row in rows])
    return buffer.getvalue()


def export_filename(shop: Shop, name: str, period: Period) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in shop.domain)[:60]
    return f"kpis-{name}-{safe}-{period.start}-{period.last_day}.csv"
