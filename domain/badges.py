"""What a badge says, and the badge as it is handed to a platform to show."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date


class BadgeKind(enum.StrEnum):
    IN_STOCK = "in_stock"
    BACKORDER = "backorder"
    OUT_OF_STOCK = "out_of_stock"
    # The store switched the app off: shoppers see nothing.
    HIDDEN = "hidden"


@dataclass(frozen=True)
class BadgePush:
    """One variant's badge as the storefront should show it."""

    variant_platform_id: str
    product_platform_id: str
    state: str  # a BadgeKind value
    label: str
    eta: date | None
    eta_text: str
    # "continue" / "deny" to enforce selling past zero, None to restore the merchant's policy.
    enforced_policy: str | None
    merchant_sells_past_zero: bool
    # The platform's inventory item key as the mirror keeps it (BigCommerce's product-level
    # stock is keyed "product:<id>", and its badge then belongs on the product).
    inventory_item_id: str | None = None
    # The selling policy the app itself last wrote to the store ("CONTINUE"/"DENY"), None if
    # the store holds the merchant's own.
    applied_policy: str | None = None


@dataclass(frozen=True)
class AppliedPolicy:
    """A selling policy the app wrote over the merchant's, remembered so it can be put back."""

    app: str  # "CONTINUE" | "DENY", what the store now holds
    merchant: str  # "CONTINUE" | "DENY", the merchant's own choice


@dataclass(frozen=True)
class PushResult:
    """What a push changed beyond the badges: variant id → the policy the app now holds on the
    store, or None where the merchant's own was put back. Only variants that changed appear."""

    policies: dict[str, AppliedPolicy | None] = field(default_factory=dict)
