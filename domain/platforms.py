"""The platforms a shop can live on. The app's models store these values; only the adapters and
the platform-named modules of the app know what each one means."""

from __future__ import annotations

import enum


class Platform(enum.StrEnum):
    SHOPIFY = "shopify"
    BIGCOMMERCE = "bigcommerce"
    SANDBOX = "sandbox"
