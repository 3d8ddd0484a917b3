"""All models, imported here so Alembic and the app see one complete metadata."""

from domain.badges import BadgeKind
from domain.platforms import Platform
from plugin.models.backorder import BackorderLine, BackorderStatus, BackorderStep
from plugin.models.badge import BadgePushRecord, BadgeTransition, VariantBadge
from plugin.models.base import Base, utcnow
from plugin.models.catalog import InventoryLevel, Product, Variant
from plugin.models.mail import MailStatus, MailTemplate, OutboxMail, SuppressedAddress
from plugin.models.notify import (
    NotifySubscription,
    Restock,
    RestockStatus,
    SubscriptionStatus,
)
from plugin.models.orders import Order, OrderLine
from plugin.models.privacy import DataRequestReport
from plugin.models.sandbox import SandboxOrder, SandboxProduct, SandboxVariant
from plugin.models.shop import (
    BadgeGeneration,
    InstallStatus,
    Shop,
    StoreLocation,
    StoreRegistration,
    StoreSettings,
    StoreUser,
)
from plugin.models.support import CustomerNote
from plugin.models.webhook import InboxStatus, WebhookAttempt, WebhookEvent

__all__ = [
    "BackorderLine",
    "BackorderStatus",
    "BackorderStep",
    "BadgeGeneration",
    "BadgeKind",
    "BadgePushRecord",
    "BadgeTransition",
    "Base",
    "CustomerNote",
    "DataRequestReport",
    "InboxStatus",
    "InstallStatus",
    "InventoryLevel",
    "MailStatus",
    "MailTemplate",
    "NotifySubscription",
    "Order",
    "OrderLine",
    "OutboxMail",
    "Platform",
    "Product",
    "Restock",
    "RestockStatus",
    "SandboxOrder",
    "SandboxProduct",
    "SandboxVariant",
    "Shop",
    "StoreLocation",
    "StoreRegistration",
    "StoreSettings",
    "StoreUser",
    "SubscriptionStatus",
    "SuppressedAddress",
    "Variant",
    "VariantBadge",
    "WebhookAttempt",
    "WebhookEvent",
    "utcnow",
]
