"""The badge decision: a pure function of its inputs, with no I/O and no clock.

Everything it needs is passed in (today's date in the shop's zone included), so it can be tested
exhaustively on its own and the worker, reconciliation and settings previews all agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from domain.badges import BadgeKind

MAX_LEAD_DAYS = 365


@dataclass(frozen=True)
class BadgeRules:
    """The store's settings, as far as the decision is concerned."""

    enabled: bool = True
    auto_backorder: bool = False
    default_lead_days: int = 14
    business_days: bool = False
    # Days a business-day lead time skips besides weekends: the store's public holidays and
    # the dates the merchant closed.
    closed_dates: frozenset[date] = frozenset()
    label_in_stock: str = "In stock"
    label_backorder: str = "Backorder, ships by {eta}"
    label_out_of_stock: str = "Out of stock"


@dataclass(frozen=True)
class InventorySnapshot:
    available: int
    # The platform's own policy lets this variant sell past zero.
    sells_past_zero: bool = False
    tracked: bool = True


@dataclass(frozen=True)
class VariantOverrides:
    eta: date | None = None
    lead_days: int | None = None
    backorder_limit: int | None = None


@dataclass(frozen=True)
class BadgeState:
    state: BadgeKind
    label: str
    eta: date | None
    reason: str
    # The selling policy the platform should enforce: "continue" while the app backorders a
    # variant the merchant set to stop at zero, "deny" once the limit is reached on a variant
    # that would otherwise keep selling, None to leave (or restore) the merchant's own policy.
    enforced_policy: str | None = None
    # The merchant's fixed ETA has passed: shoppers see the lead time instead, and the merchant
    # is told to set a new date.
    fixed_eta_passed: bool = False


def decide_badge(
    rules: BadgeRules,
    inventory: InventorySnapshot,
    overrides: VariantOverrides,
    units_backordered: int,
    today: date,
    format_eta=None,
) -> BadgeState:
    """Decide one variant's badge.

    `format_eta` turns the ETA into the text put into the backorder label (the shop's own date
    format); by default ISO.
    """
    if not rules.enabled:
        return BadgeState(BadgeKind.HIDDEN, "", None, "app switched off")

    if not inventory.tracked:
        return BadgeState(BadgeKind.IN_STOCK, rules.label_in_stock, None, "inventory not tracked")

    if inventory.available > 0:
        return BadgeState(
            BadgeKind.IN_STOCK, rules.label_in_stock, None, f"{inventory.available} available"
        )

    may_sell_past_zero = inventory.sells_past_zero or rules.auto_backorder
    limit = overrides.backorder_limit
    if not may_sell_past_zero:
        return BadgeState(
            BadgeKind.OUT_OF_STOCK, rules.label_out_of_stock, None, "sold out; not sold past zero"
        )
    if limit is not None and units_backordered >= limit:
        return BadgeState(
            BadgeKind.OUT_OF_STOCK,
            rules.label_out_of_stock,
            None,
            f"backorder limit reached ({units_backordered}/{limit})",
            enforced_policy="deny" if inventory.sells_past_zero or rules.auto_backorder else None,
        )

    eta = backorder_eta(rules, overrides, today)
    eta_text = format_eta(eta) if format_eta else eta.isoformat()
    passed = overrides.eta is not None and overrides.eta < today
    reason = "sold out; backordering" + (
        f" ({units_backordered}/{limit})" if limit is not None else ""
    )
    if passed:
        reason += f"; the fixed ETA {overrides.eta.isoformat()} has passed, lead time used"
    return BadgeState(
        BadgeKind.BACKORDER,
        render_label(rules.label_backorder, eta_text),
        eta,
        reason,
        enforced_policy="continue" if not inventory.sells_past_zero else None,
        fixed_eta_passed=passed,
    )


def backorder_eta(rules: BadgeRules, overrides: VariantOverrides, today: date) -> date:
    """The variant's own date if set and not past; otherwise today plus the lead time (a passed
    fixed date is never shown: the decision flags it for the merchant)."""
    if overrides.eta is not None and overrides.eta >= today:
        return overrides.eta
    lead = overrides.lead_days if overrides.lead_days is not None else rules.default_lead_days
    lead = min(max(lead, 0), MAX_LEAD_DAYS)
    if rules.business_days:
        return add_business_days(today, lead, rules.closed_dates)
    return today + timedelta(days=lead)


def add_business_days(start: date, days: int, closed: frozenset[date] = frozenset()) -> date:
    """`days` working days after `start`: Monday to Friday, skipping `closed` dates."""
    current = start
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5 and current not in closed:
            remaining -= 1
    return current


def render_label(template: str, eta_text: str) -> str:
    """Fill `{eta}` in a merchant's label; any other brace is shown as typed."""
    return template.replace("{eta}", eta_text)
